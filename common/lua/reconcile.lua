-- reconcile.lua: run by the nginx module (ngx_http_telehealth_reconcile.c)
-- (compiled in as th_lua_reconcile).
--
-- ARGV: prefix, now (ms), closed TTL (s), settle (ms), then the room and
-- session of every open session of PostgreSQL.  Answers what it found,
-- {what, room, session, reason, closed_at} each.

local p, now, cttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local settle = tonumber(ARGV[4])
local open, out = {}, {}
for i = 5, #ARGV - 1, 2 do open[ARGV[i]] = ARGV[i + 1] end
local function unlock(pid, room)
  local k = p .. 'patient:' .. pid .. ':room'
  if redis.call('GET', k) == room then redis.call('DEL', k) end
end
local function close(room, h, reason)
  local rk = p .. 'room:' .. room
  local members = redis.call('HGETALL', rk .. ':members')
  redis.call('HSET', rk, 'state', 'closed', 'closed_at', ARGV[2],
             'closed_reason', reason)
  redis.call('EXPIRE', rk, cttl)
  redis.call('DEL', rk .. ':members',
             p .. 'session:' .. h[2] .. ':banned',
             p .. 'session:' .. h[2] .. ':roles')
  if h[5] and h[5] ~= '' then unlock(h[5], room) end
  for i = 1, #members, 2 do
    local who, role = members[i], ''
    if string.sub(who, 1, 8) == 'patient:' then
      unlock(string.sub(who, 9), room)
    end
    local ok, m = pcall(cjson.decode, members[i + 1])
    if ok and type(m) == 'table' and type(m.role) == 'string' then
      role = m.role
    end
    redis.call('XADD', p .. 'events', '*', 'type', 'participant.left',
      'room', room, 'session', h[2], 'org', h[3], 'participant', who,
      'role', role, 'reason', reason, 'ts', ARGV[2])
  end
  redis.call('XADD', p .. 'events', '*', 'type', 'room.closed',
    'room', room, 'session', h[2], 'org', h[3], 'kind', h[4],
    'reason', reason, 'ts', ARGV[2])
end
-- PostgreSQL's open sessions, as Redis sees their rooms
for room, session in pairs(open) do
  local r = redis.call('HMGET', p .. 'room:' .. room, 'state',
    'session', 'closed_reason', 'closed_at')
  if not r[1] then
    out[#out + 1] = {'missing', room, session, '', ''}
  elseif r[1] ~= 'open' and r[2] == session
         and now - (tonumber(r[4] or '') or 0) > settle then
    out[#out + 1] = {'closed', room, session, r[3] or '', r[4] or ''}
  end
end
-- Redis' open rooms, as PostgreSQL and the nodes see them
local cursor = '0'
repeat
  local res = redis.call('SCAN', cursor, 'MATCH', p .. 'room:*',
                         'COUNT', 1000)
  cursor = res[1]
  for _, key in ipairs(res[2]) do
    local room = string.sub(key, #p + 6)
    if not string.find(room, ':', 1, true) then
      local h = redis.call('HMGET', key, 'state', 'session', 'org',
        'kind', 'patient', 'node', 'lease_at', 'empty_timeout',
        'empty_since', 'node_grace', 'created_at', 'opened_at')
      for i = 2, 12 do h[i] = h[i] or '' end
      -- a host that has not renewed its lease yet took it at the join
      local lease = math.max(tonumber(h[7]) or 0, tonumber(h[12]) or 0)
      local age = now - (tonumber(h[11]) or 0) * 1000
      if h[1] == 'open' and open[room] == nil and age > settle then
        redis.call('DEL', key, key .. ':members')
        if h[5] ~= '' then unlock(h[5], room) end
        out[#out + 1] = {'orphan', room, h[2], '', ''}
      elseif h[1] == 'open' and open[room] ~= nil then
        local alive = h[6] ~= ''
          and redis.call('EXISTS', p .. 'node:' .. h[6]) == 1
        local grace = (tonumber(h[10]) or 120) * 1000
        local empty = tonumber(h[8]) or 0
        if h[6] ~= '' and not alive and lease > 0
           and now - lease > grace then
          close(room, h, 'node_lost')
          out[#out + 1] = {'node_lost', room, h[2], h[6], ''}
        elseif h[6] == '' and empty > 0 and h[9] ~= ''
           and redis.call('HLEN', key .. ':members') == 0
           and now - tonumber(h[9]) > empty * 1000 then
          close(room, h, 'expired')
          out[#out + 1] = {'expired', room, h[2], '', ''}
        end
      end
    end
  end
until cursor == '0'
-- patient locks that no room's member holds
cursor = '0'
repeat
  local res = redis.call('SCAN', cursor, 'MATCH',
                         p .. 'patient:*:room', 'COUNT', 1000)
  cursor = res[1]
  for _, key in ipairs(res[2]) do
    local room = redis.call('GET', key)
    local pid = string.sub(key, #p + 9, -6)
    if room then
      local rk = p .. 'room:' .. room
      local h = redis.call('HMGET', rk, 'state', 'kind', 'patient')
      if h[1] ~= 'open'
         or (not (h[2] == 'video_call' and h[3] == pid)
             and redis.call('HEXISTS', rk .. ':members',
                            'patient:' .. pid) == 0) then
        redis.call('DEL', key)
        out[#out + 1] = {'lock', room, pid, '', ''}
      end
    end
  end
until cursor == '0'
return out

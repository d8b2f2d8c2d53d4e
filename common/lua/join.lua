-- join.lua: run by the Janus plugin (janus_telehealth_redis.c)
-- (compiled in as th_lua_join).
--
-- Join: KEYS revoked, room, members, banned, roles.  ARGV node id, node key
-- prefix, now (ms), session, participant, member JSON, patient lock key
-- head, default max, role, iat (s), unlisted ("1" or "0"), kind of the
-- credential, room id, patient lock key tail (a lock key is head, patient
-- uuid, tail), "1" when this node hosts the room in memory, "1" when the
-- joiner is admitted already (the credential's "admitted", or a chair of
-- this node admitted them earlier in the room's life), "1" when this node
-- drains (takes no new rooms: one that no live node hosts is refused with
-- {'draining'}; the rooms it hosts go on).
--
-- Refusals come first and write nothing.  A participant a chair removed
-- (in the session's banned set) stays out whatever their credential.
-- access: a guest (who came by an invite link) whose credential was issued
-- (iat) before the level changed away from invitation (access_changed_at)
-- is refused; so is, while the level is private, staff not on the list
-- (ARGV[11] "1", the credential's "unlisted").  A node whose heartbeat is
-- gone has died: its members are stale, so the new host returns them (to
-- report them as lost) and starts afresh.  So are the members of a room
-- that names this node but that this node does not host: they are from
-- before a restart with the same node_id.  first_connect: until someone
-- with that role is a member (waiting or in), nobody of another role may
-- join.  A role a chair set in this session (roles hash) replaces the
-- credential's.  A patient takes their lock for every kind but video_call
-- (nginx holds that one from creation), unless it names another room.
--
-- Admission is decided here, for the plugin to follow: a role that the
-- room's waiting_room lists ("a,b") waits for a chair, unless it is a
-- chair or admitted already (docs/plugin.md, Waiting room).
--
-- Then the room is ours: host and lease, nobody-there mark cleared, the
-- member written.  An open room never expires (docs/lifecycle.md): PERSIST
-- undoes a TTL an older nginx may have set on the hash or the lock.
--
-- Answers {'ok', first open ("1"), kind, org, patient, stale members
-- (id, member, ...), bitrate, waits ("1": wait for a chair), leave_policy,
-- duration_limit, opened_at, max participants, role, empty_timeout}, or a
-- refusal: {'revoked'}, {'no_room'}, {'closed'}, {'wrong_session'},
-- {'banned'}, {'access', level}, {'other_node'}, {'full', max},
-- {'not_yet', role}, {'in_session'}, {'draining'}.

if redis.call('EXISTS', KEYS[1]) == 1 then return {'revoked'} end
local r = redis.call('HMGET', KEYS[2], 'state', 'session', 'node',
    'kind', 'org', 'patient', 'max_participants', 'bitrate',
    'waiting_room', 'leave_policy', 'duration_limit', 'first_connect',
    'access', 'access_changed_at', 'empty_timeout')
if not r[1] then return {'no_room'} end
if r[1] ~= 'open' then return {'closed'} end
if r[2] ~= ARGV[4] then return {'wrong_session'} end
if redis.call('SISMEMBER', KEYS[4], ARGV[5]) == 1 then
  return {'banned'}
end
if r[13] and r[13] ~= '' and r[13] ~= 'invitation'
   and string.sub(ARGV[5], 1, 6) == 'guest:'
   and tonumber(ARGV[10]) * 1000 < (tonumber(r[14] or '') or 0) then
  return {'access', r[13]}
end
if r[13] == 'private' and ARGV[11] == '1' then
  return {'access', r[13]}
end
local takeover = false
if r[3] and r[3] ~= '' and r[3] ~= ARGV[1] then
  if redis.call('EXISTS', ARGV[2] .. r[3]) == 1 then
    return {'other_node', r[3]}
  end
  takeover = true
elseif r[3] == ARGV[1] and ARGV[15] ~= '1' then
  takeover = true
end
if ARGV[17] == '1' and (takeover or not r[3] or r[3] == '') then
  return {'draining'}
end
local role = redis.call('HGET', KEYS[5], ARGV[5]) or ARGV[9]
local max = tonumber(r[7] or '') or tonumber(ARGV[8]) or 0
if max > 0 and not takeover
   and redis.call('HEXISTS', KEYS[3], ARGV[5]) == 0
   and redis.call('HLEN', KEYS[3]) >= max then
  return {'full', tostring(max)}
end
local fc = r[12]
if fc and fc ~= '' and fc ~= role then
  local found = false
  if not takeover then
    for _, v in ipairs(redis.call('HVALS', KEYS[3])) do
      local ok, m = pcall(cjson.decode, v)
      if ok and type(m) == 'table' and m.role == fc then
        found = true
        break
      end
    end
  end
  if not found then return {'not_yet', fc} end
end
local kind = r[4] or ARGV[12]
local lock = ''
if string.sub(ARGV[5], 1, 8) == 'patient:'
   and kind ~= 'video_call' then
  lock = ARGV[7] .. string.sub(ARGV[5], 9) .. ARGV[14]
  local held = redis.call('GET', lock)
  if held and held ~= ARGV[13] then return {'in_session'} end
end
local waits = '0'
if role ~= 'chair' and ARGV[16] ~= '1' and r[9] then
  for w in string.gmatch(r[9], '[^,%s]+') do
    if w == role then waits = '1' end
  end
end
local stale = {}
if takeover then
  stale = redis.call('HGETALL', KEYS[3])
  redis.call('DEL', KEYS[3])
  if kind ~= 'video_call' then
    for i = 1, #stale, 2 do
      local id = stale[i]
      if id ~= ARGV[5] and string.sub(id, 1, 8) == 'patient:' then
        local k = ARGV[7] .. string.sub(id, 9) .. ARGV[14]
        if redis.call('GET', k) == ARGV[13] then
          redis.call('DEL', k)
        end
      end
    end
  end
end
if lock ~= '' then redis.call('SET', lock, ARGV[13]) end
if r[6] and r[6] ~= '' then
  local k = ARGV[7] .. r[6] .. ARGV[14]
  if redis.call('GET', k) == ARGV[13] then redis.call('PERSIST', k) end
end
local member = ARGV[6]
if role ~= ARGV[9] then
  local ok, m = pcall(cjson.decode, member)
  if ok and type(m) == 'table' then
    m.role = role
    member = cjson.encode(m)
  end
end
redis.call('HSET', KEYS[2], 'node', ARGV[1], 'lease_at', ARGV[3])
redis.call('HDEL', KEYS[2], 'empty_since')
local first = redis.call('HSETNX', KEYS[2], 'opened_at', ARGV[3])
local opened = redis.call('HGET', KEYS[2], 'opened_at')
redis.call('HSET', KEYS[3], ARGV[5], member)
redis.call('PERSIST', KEYS[2])
redis.call('PERSIST', KEYS[3])
return {'ok', tostring(first), kind or '', r[5] or '', r[6] or '',
        stale, r[8] or '', waits, r[10] or '', r[11] or '',
        opened or ARGV[3], tostring(max), role, r[15] or ''}

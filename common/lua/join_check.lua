-- join_check.lua: run by the nginx module (ngx_http_telehealth_join.c)
-- (compiled in as th_lua_join_check).
--
-- KEYS: room hash, patient lock (or ""), node registry set.  ARGV: the
-- session the caller joins, node key prefix ("th:node:"), drain mark
-- prefix ("th:drain:").
--
-- Answers {state, session, lock's room, node, node's public URL}.  The
-- node is where the caller should join (docs/redis.md, "Nodes and
-- placement"): the room's host while its heartbeat lives (draining or
-- not: a drained node keeps its calls); else the node this room was
-- placed on before, while it lives and takes rooms; else the least-loaded
-- live node that is not draining, recorded in the room hash (field
-- placed) so that everyone who joins before the first one lands goes to
-- the same node.  Load is participants plus the rooms placed there since
-- its last heartbeat (field pending); ties go to fewer rooms, then less
-- CPU, then the node id.  Node and URL are false when the room is not
-- this session's open room or no live node takes rooms.

local r = redis.call('HMGET', KEYS[1], 'state', 'session', 'node', 'placed')
local lock = false
if KEYS[2] ~= '' then lock = redis.call('GET', KEYS[2]) end
if r[1] ~= 'open' or r[2] ~= ARGV[1] then
  return {r[1], r[2], lock, false, false}
end

local function live(id)
  if not id or id == '' then return nil end
  local n = redis.call('HMGET', ARGV[2] .. id, 'heartbeat_at', 'url',
      'draining', 'participants', 'pending', 'rooms', 'cpu')
  if not n[1] then return nil end
  n.draining = n[3] == '1'
      or redis.call('EXISTS', ARGV[3] .. id) == 1
  return n
end

local host = live(r[3])
if host then
  return {r[1], r[2], lock, r[3], host[2] or ''}
end

local placed = live(r[4])
if placed and not placed.draining then
  return {r[1], r[2], lock, r[4], placed[2] or ''}
end

local best, best_node, best_key
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local n = live(id)
  if not n then
    redis.call('SREM', KEYS[3], id)
  elseif not n.draining then
    local key = {(tonumber(n[4]) or 0) + (tonumber(n[5]) or 0),
                 (tonumber(n[6]) or 0) + (tonumber(n[5]) or 0),
                 tonumber(n[7]) or 0}
    local better = best == nil
    if not better then
      for i = 1, 3 do
        if key[i] ~= best_key[i] then
          better = key[i] < best_key[i]
          break
        end
        if i == 3 then better = id < best end
      end
    end
    if better then
      best, best_node, best_key = id, n, key
    end
  end
end

if not best then
  return {r[1], r[2], lock, false, false}
end

redis.call('HSET', KEYS[1], 'placed', best)
redis.call('HINCRBY', ARGV[2] .. best, 'pending', 1)
return {r[1], r[2], lock, best, best_node[2] or ''}

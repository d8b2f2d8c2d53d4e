-- refresh.lua: run by the Janus plugin (janus_telehealth_redis.c)
-- (compiled in as th_lua_refresh).
--
-- Refresh: KEYS room.  ARGV node id, now (ms).  Renews this node's lease
-- on a room it hosts (nothing expires while a room is open: the lease and
-- the node's heartbeat tell that a host is alive) and tells when the room
-- is no longer ours (with the reason of a close someone else made).
-- Answers the room's empty_timeout too, so that a change nginx makes to
-- an empty room applies without a join.

local r = redis.call('HMGET', KEYS[1], 'state', 'node',
                     'empty_timeout')
if not r[1] then return {'gone'} end
if r[1] ~= 'open' then
  return {'closed', redis.call('HGET', KEYS[1], 'closed_reason')
                    or ''}
end
if r[2] ~= ARGV[1] then return {'moved'} end
redis.call('HSET', KEYS[1], 'lease_at', ARGV[2])
return {'ok', r[3] or ''}

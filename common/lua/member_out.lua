-- member_out.lua: run by the Janus plugin (janus_telehealth_redis.c)
-- (compiled in as th_lua_member_out).
--
-- Out of the room (leave, hangup, removed, turned away): KEYS room,
-- members, patient lock ('' when none is ours to give back), banned (''
-- unless a chair removed them).  ARGV participant, room id, now (ms),
-- node id.  The ban is recorded whatever the room's state.  The rest
-- only while the room is open and ours: a node that lost the room must
-- not undo what the new host wrote.  The lock goes only while it names
-- this room; the last one out marks the room empty since now (nginx's
-- reconciler reads it for rooms nobody hosts any more).

if KEYS[4] ~= '' then redis.call('SADD', KEYS[4], ARGV[1]) end
local r = redis.call('HMGET', KEYS[1], 'state', 'node')
if r[1] ~= 'open' or r[2] ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if KEYS[3] ~= '' and redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('DEL', KEYS[3])
end
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'empty_since', ARGV[3])
end
return 1

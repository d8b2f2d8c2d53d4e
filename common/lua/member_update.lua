-- member_update.lua: run by the Janus plugin (janus_telehealth_redis.c)
-- (compiled in as th_lua_member_update).
--
-- KEYS: members hash.  ARGV: participant id, member JSON.  Writes the
-- member only while it is there: a flag change written behind the request
-- (docs/plugin.md, "Threads and failures") never brings back a member who
-- left meanwhile.  Answers 1 when written, 0 when the member is gone.

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1

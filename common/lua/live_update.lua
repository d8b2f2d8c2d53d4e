-- live_update.lua: run by the nginx module (ngx_http_telehealth_live.c)
-- (compiled in as th_lua_live_update).
--
-- KEYS: the room hash.  ARGV: the session, then field and value pairs.
-- A room that has closed, lapsed or been reused is left alone.

if redis.call('HGET', KEYS[1], 'session') ~= ARGV[1] then
  return 0
end
for i = 2, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1

-- release.lua: run by the nginx module (ngx_http_telehealth_session.c)
-- (compiled in as th_lua_release).
--
-- KEYS: patient lock (or ""), room hash.  ARGV: room, session.

if KEYS[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('HGET', KEYS[2], 'session') == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return 1

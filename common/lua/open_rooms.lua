-- open_rooms.lua: run by the nginx module (ngx_http_telehealth_session.c)
-- (compiled in as th_lua_open_rooms).
--
-- KEYS: room hashes.  ARGV: their sessions.  1 for each open room.

local r = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'state', 'session')
  if v[1] == 'open' and v[2] == ARGV[i] then
    r[i] = 1
  else
    r[i] = 0
  end
end
return r

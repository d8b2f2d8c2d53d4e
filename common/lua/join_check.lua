-- join_check.lua: run by the nginx module (ngx_http_telehealth_session.c)
-- (compiled in as th_lua_join_check).
--
-- KEYS: room hash, patient lock (or "").  {state, session, lock's room}

local r = redis.call('HMGET', KEYS[1], 'state', 'session')
local lock = false
if KEYS[2] ~= '' then lock = redis.call('GET', KEYS[2]) end
return {r[1], r[2], lock}

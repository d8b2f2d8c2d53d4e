-- open.lua: run by the nginx module (ngx_http_telehealth_session.c)
-- (compiled in as th_lua_open).
--
-- KEYS: patient lock ("" unless the kind holds it for the whole session,
-- a video_call), room hash.  ARGV: room, now (ms, the room is empty
-- since), session, org, kind, patient, created_by, created_at, then policy
-- field and value pairs.  Nothing expires: the room lives until the
-- session ends (docs/lifecycle.md).  1 when created; else the room that
-- holds the lock.

if KEYS[1] ~= '' and not redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  return redis.call('GET', KEYS[1]) or 0
end
redis.call('HSET', KEYS[2], 'session', ARGV[3], 'org', ARGV[4],
  'kind', ARGV[5], 'state', 'open', 'patient', ARGV[6],
  'created_by', ARGV[7], 'created_at', ARGV[8],
  'empty_since', ARGV[2])
for i = 9, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1

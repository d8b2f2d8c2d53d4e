-- rebuild.lua: run by the nginx module (ngx_http_telehealth_reconcile.c)
-- (compiled in as th_lua_rebuild).
--
-- Rebuilds the room of an open session.  KEYS: room hash, patient lock
-- ("" unless a video call's), bans.  ARGV: room, now (ms), session, org,
-- kind, patient, created_by, created_at (s), the number of bans, the bans,
-- then policy field and value pairs.  0 when the room exists (again).

if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'session', ARGV[3], 'org', ARGV[4],
  'kind', ARGV[5], 'state', 'open', 'patient', ARGV[6],
  'created_by', ARGV[7], 'created_at', ARGV[8],
  'empty_since', ARGV[2])
local n = tonumber(ARGV[9])
for i = 10, 9 + n do redis.call('SADD', KEYS[3], ARGV[i]) end
for i = 10 + n, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'NX') end
return 1

-- revoke_token.lua: run by the nginx module at logout
-- (ngx_http_telehealth_auth.c; compiled in as th_lua_revoke_token).
--
-- KEYS[1]: the token's "revoked" key; KEYS[2]: the revocations sorted set.
-- ARGV: the key's TTL (s), the token's expiry (unix s), now (unix s), the
-- revocations channel, the token's id.  Every nginx keeps the revocation
-- from the channel, or from the set when it subscribes (docs/redis.md,
-- "Revocations").

redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
local m = 't ' .. ARGV[5] .. ' ' .. ARGV[2]
redis.call('ZADD', KEYS[2], ARGV[2], m)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
redis.call('PUBLISH', ARGV[4], m)
return 1

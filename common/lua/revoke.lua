-- revoke.lua: run by the nginx module (ngx_http_telehealth_revoke.c)
-- (compiled in as th_lua_revoke).
--
-- KEYS[1]: the "not before" key; then per room its hash and its members;
-- last the revocations sorted set.
-- ARGV: now (s), TTL (s), the command channel prefix, the participant id,
-- the command, a command id, the revocations channel, the person's id;
-- then the room ids.  Returns how many "remove" commands went out.  Every
-- nginx keeps "not before" from the channel, or from the set when it
-- subscribes (docs/redis.md, "Revocations").

redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local expires = tonumber(ARGV[1]) + tonumber(ARGV[2])
local m = 'p ' .. ARGV[8] .. ' ' .. ARGV[1] .. ' ' .. expires
redis.call('ZADD', KEYS[#KEYS], expires, m)
redis.call('ZREMRANGEBYSCORE', KEYS[#KEYS], '-inf', '(' .. ARGV[1])
redis.call('PUBLISH', ARGV[7], m)
local n = 0
for i = 9, #ARGV do
  local room = ARGV[i]
  local hash = KEYS[2 * (i - 9) + 2]
  local members = KEYS[2 * (i - 9) + 3]
  local h = redis.call('HMGET', hash, 'state', 'node')
  if h[1] == 'open' and h[2] and h[2] ~= ''
     and redis.call('HEXISTS', members, ARGV[4]) == 1 then
    redis.call('PUBLISH', ARGV[3] .. h[2], cjson.encode({
      command = ARGV[5], room = room, participant = ARGV[4],
      id = ARGV[6] .. '.' .. n}))
    n = n + 1
  end
end
return n

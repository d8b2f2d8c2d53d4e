-- throttle_check.lua: run by the nginx module (ngx_http_telehealth_throttle.c)
-- (compiled in as th_lua_throttle_check).
--
-- KEYS: the subjects; ARGV as the failure script's.  Returns the ms to
-- wait before the next attempt.  A subject in back-off (past its free
-- failures) that may try again gets one attempt: the window closes at
-- once, so that a burst of parallel attempts does not pass with it.

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local base = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local wait = 0
for _, k in ipairs(KEYS) do
  local u = tonumber(redis.call('HGET', k, 'until') or '0')
  if u - now > wait then wait = u - now end
end
if wait > 0 then return wait end
for i, k in ipairs(KEYS) do
  local free = tonumber(ARGV[2 * i + 2])
  local n = tonumber(redis.call('HGET', k, 'n') or '0')
  if n >= free then
    local d = math.floor(math.min(base * 2 ^ (n - free), max))
    redis.call('HSET', k, 'until', now + d)
  end
end
return 0

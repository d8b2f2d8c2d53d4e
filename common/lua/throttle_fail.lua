-- throttle_fail.lua: run by the nginx module (ngx_http_telehealth_throttle.c)
-- (compiled in as th_lua_throttle_fail).
--
-- KEYS: the subjects; ARGV: first back-off, maximum back-off, lock (ms),
-- then "free" and "lock" failures of each key.  Returns the ms to wait.

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local base = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local lockms = tonumber(ARGV[3])
local wait = 0
for i, k in ipairs(KEYS) do
  local free = tonumber(ARGV[2 * i + 2])
  local lock = tonumber(ARGV[2 * i + 3])
  local n = redis.call('HINCRBY', k, 'n', 1)
  local d = 0
  if lock > 0 and n >= lock then d = lockms
  elseif n >= free then d = math.min(base * 2 ^ (n - free), max) end
  d = math.floor(d)
  redis.call('HSET', k, 'until', now + d)
  redis.call('PEXPIRE', k, math.max(lockms, d, 1))
  if d > wait then wait = d end
end
return wait

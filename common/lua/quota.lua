-- quota.lua: run by the nginx module (ngx_http_telehealth_throttle.c)
-- (compiled in as th_lua_quota).
--
-- KEYS: counters, one per scope (a staff member, an organisation); ARGV:
-- the window (ms), then each key's limit (0: none).  When a counter has
-- reached its limit nothing counts and the answer is the ms until its
-- window ends; otherwise every counter counts one (a window starts with
-- its first count) and the answer is 0.

local win = tonumber(ARGV[1])
local wait = 0
for i, k in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if limit > 0 and tonumber(redis.call('GET', k) or '0') >= limit then
    local t = redis.call('PTTL', k)
    if t < 0 then t = win end
    if t > wait then wait = t end
  end
end
if wait > 0 then return wait end
for _, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 then redis.call('PEXPIRE', k, win) end
end
return 0

-- nodes.lua: run by the nginx module (ngx_http_telehealth_metrics.c)
-- (compiled in as th_lua_nodes).
--
-- KEYS: node registry set.  ARGV: node key prefix ("th:node:"), drain mark
-- prefix ("th:drain:").  Answers one {id, drain mark ("1" or "0"),
-- {field, value, ...} of its heartbeat} per live node (its heartbeat hash
-- exists), by id.  Reads only: placement (join_check.lua) forgets the
-- dead ones.

local out = {}
local ids = redis.call('SMEMBERS', KEYS[1])
table.sort(ids)
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h > 0 then
    out[#out + 1] = {id, tostring(redis.call('EXISTS', ARGV[2] .. id)), h}
  end
end
return out

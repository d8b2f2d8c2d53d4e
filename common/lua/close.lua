-- close.lua: run by the Janus plugin (janus_telehealth_redis.c)
-- (compiled in as th_lua_close).
--
-- Close: KEYS room, members, patient lock of the room ('' if it names
-- none).  ARGV room id, closed TTL, now (ms), reason, patient lock key
-- head and tail.  Succeeds once: 1 when this call closed an open room, 0
-- when it was closed already or gone (room.closed is then someone else's
-- to write).  Every lock still naming this room goes: the room's patient
-- (a video_call's, held by nginx) and any patient member's.

local closed = 0
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', ARGV[3],
             'closed_reason', ARGV[4])
  redis.call('HDEL', KEYS[1], 'empty_since')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  closed = 1
end
for _, id in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(id, 1, 8) == 'patient:' then
    local k = ARGV[5] .. string.sub(id, 9) .. ARGV[6]
    if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end
  end
end
redis.call('DEL', KEYS[2])
if KEYS[3] ~= '' and redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('DEL', KEYS[3])
end
return closed

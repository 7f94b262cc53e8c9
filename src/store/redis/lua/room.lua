-- The head of the line that fits the admission limits right now.
-- KEYS: line, active (zset of expiry by consumer), window (zset of batches),
--       entries
-- Returns consumer, external id ('' = none), consumer, …
-- ARGV: now, want, per_minute, max_active (-1 = none)
local now = tonumber(ARGV[1])
-- Expired tokens free their maxActive slot; old batches leave the window.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60000)
local used = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  used = used + tonumber(string.match(member, ':(%d+)$'))
end
local room = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - used)
local max_active = tonumber(ARGV[4])
if max_active >= 0 then
  room = math.min(room, max_active - redis.call('ZCARD', KEYS[2]))
end
if room <= 0 then
  return {}
end
local out = {}
for _, consumer in ipairs(redis.call('ZRANGE', KEYS[1], 0, room - 1)) do
  local record = cjson.decode(redis.call('HGET', KEYS[4], consumer))
  out[#out + 1] = consumer
  out[#out + 1] = record.e or ''
end
return out

-- The next entrants in drawn order for slots no live token holds.
-- KEYS: draw, order, active, entrants; ARGV: now, winners
-- Returns consumer, external id ('' = none), ...
if redis.call('HGET', KEYS[1], 'drawn') ~= '1' then
  return {}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
local redeemed = tonumber(redis.call('HGET', KEYS[1], 'redeemed') or '0')
local slots = tonumber(ARGV[2]) - redeemed - redis.call('ZCARD', KEYS[3])
if slots <= 0 then
  return {}
end
local next = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local out = {}
for _, consumer in ipairs(redis.call('LRANGE', KEYS[2], next, next + slots - 1)) do
  local record = cjson.decode(redis.call('HGET', KEYS[4], consumer))
  out[#out + 1] = consumer
  out[#out + 1] = record.e or ''
end
return out

-- Close registration for good and return who registered.
-- KEYS: draw, entrants; ARGV: seed candidate
-- Returns {seed, drawn, consumer, record, consumer, record, ...}
redis.call('HSETNX', KEYS[1], 'seed', ARGV[1])
redis.call('HSET', KEYS[1], 'closed', '1')
local out = {redis.call('HGET', KEYS[1], 'seed'), redis.call('HGET', KEYS[1], 'drawn') or '0'}
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do
  out[#out + 1] = v
end
return out

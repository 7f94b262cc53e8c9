-- Consume a draw winner's token once.
-- KEYS: draw, entrants, active; ARGV: consumer, jti, now
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then
  return 'unknown'
end
local record = cjson.decode(current)
if record.j ~= ARGV[2] then
  return 'unknown'
end
if record.s == 'x' then
  return 'already'
end
if tonumber(record.x) <= tonumber(ARGV[3]) then
  return 'expired'
end
record.s = 'x'
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(record))
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'redeemed', 1)
return 'ok'

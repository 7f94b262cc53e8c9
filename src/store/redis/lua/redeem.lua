-- Consume a handoff token once.
-- KEYS: entries, active, stats; ARGV: consumer, jti, now
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  return 'unknown'
end
local record = cjson.decode(current)
if record.j ~= ARGV[2] then
  return 'unknown'
end
if record.s == 'r' then
  return 'already'
end
if record.s == 'l' then
  return 'revoked'
end
if tonumber(record.x) <= tonumber(ARGV[3]) then
  return 'expired'
end
record.s = 'r'
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'redeemed', 1)
return 'ok'

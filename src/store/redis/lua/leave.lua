-- Leave the line, or give up an admission that was not redeemed yet.
-- KEYS: line, entries, active (zset), stats; ARGV: consumer, now, channel, seq
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then
  return 'none'
end
local record = cjson.decode(current)
if record.s == 'w' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  local version = redis.call('HINCRBY', KEYS[4], 'version', 1)
  redis.call('PUBLISH', ARGV[3], cjson.encode({
    t = 'left', seq = ARGV[4], v = version, score = record.t}))
  return 'left'
end
if record.s == 'a' and tonumber(record.x) > tonumber(ARGV[2]) then
  record.s = 'l'
  redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(record))
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 'released'
end
return 'unchanged'

-- Enter a queue, or return the entry the consumer already has.
-- KEYS: line (zset), entries (hash), tickets (counter), stats (hash)
-- ARGV: consumer, now, opens_at, max_participants (-1 = none),
--       prequeue_score, refusal ('' = accept), channel, sequence id,
--       external id ('' = none)
-- Returns {kind, record, rank or -1, line version}
local consumer = ARGV[1]
local now = tonumber(ARGV[2])
local current = redis.call('HGET', KEYS[2], consumer)
if current then
  local rank = redis.call('ZRANK', KEYS[1], consumer)
  local version = tonumber(redis.call('HGET', KEYS[4], 'version') or '0')
  return {'existing', current, rank or -1, version}
end
if ARGV[6] ~= '' then
  return {'refused', ARGV[6]}
end
local max = tonumber(ARGV[4])
if max >= 0 and redis.call('HLEN', KEYS[2]) >= max then
  return {'refused', 'full'}
end
-- Before opening, a random score below every ticket: the pre-queue is
-- shuffled ahead of later arrivals however early each one came.
local score
if now < tonumber(ARGV[3]) then
  score = tonumber(ARGV[5])
else
  score = 8589934592 + redis.call('INCR', KEYS[3])
end
redis.call('ZADD', KEYS[1], score, consumer)
local fields = {s = 'w', t = score, at = now}
if ARGV[9] ~= '' then
  fields.e = ARGV[9]
end
local record = cjson.encode(fields)
redis.call('HSET', KEYS[2], consumer, record)
local rank = redis.call('ZRANK', KEYS[1], consumer)
local version = tonumber(redis.call('HGET', KEYS[4], 'version') or '0')
redis.call('PUBLISH', ARGV[7], cjson.encode({
  t = 'entered', seq = ARGV[8], v = version, c = consumer,
  score = score, pos = rank + 1}))
return {'new', record, rank, version}

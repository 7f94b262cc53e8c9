-- Record a batch of grants, only for a leader holding the current fence.
-- KEYS: line, entries, active, window, stats
-- ARGV: fence, now, channel, seq, then (consumer, jti, expires_at, token)...
if tonumber(redis.call('HGET', KEYS[5], 'fence') or '-1') ~= tonumber(ARGV[1]) then
  return -1
end
local granted = {}
for i = 5, #ARGV, 4 do
  local consumer = ARGV[i]
  -- Someone who left between planning and now is simply skipped.
  if redis.call('ZREM', KEYS[1], consumer) == 1 then
    local record = cjson.decode(redis.call('HGET', KEYS[2], consumer))
    record.s = 'a'
    record.j = ARGV[i + 1]
    record.x = tonumber(ARGV[i + 2])
    record.k = ARGV[i + 3]
    redis.call('HSET', KEYS[2], consumer, cjson.encode(record))
    redis.call('ZADD', KEYS[3], record.x, consumer)
    granted[#granted + 1] = {c = consumer, k = record.k, x = record.x}
  end
end
if #granted == 0 then
  return 0
end
local total = redis.call('HINCRBY', KEYS[5], 'admitted', #granted)
local version = redis.call('HINCRBY', KEYS[5], 'version', 1)
redis.call('ZADD', KEYS[4], ARGV[2], version .. ':' .. #granted)
redis.call('PUBLISH', ARGV[3], cjson.encode({
  t = 'batch', seq = ARGV[4], v = version, admitted = granted, total = total}))
return #granted

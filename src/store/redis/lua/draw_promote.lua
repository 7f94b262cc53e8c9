-- Give freed slots to the next in drawn order, for the current fence only.
-- KEYS: draw, entrants, order, active, stats
-- ARGV: fence, now, channel, draw id, then (consumer, jti, expires_at, token)...
if tonumber(redis.call('HGET', KEYS[5], 'fence') or '-1') ~= tonumber(ARGV[1]) then
  return -1
end
local next = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local granted = {}
for i = 5, #ARGV, 4 do
  -- Only ever the next in order, so nobody is skipped or promoted twice.
  if redis.call('LINDEX', KEYS[3], next) ~= ARGV[i] then
    break
  end
  next = next + 1
  local record = cjson.decode(redis.call('HGET', KEYS[2], ARGV[i]))
  record.s = 'w'
  record.j = ARGV[i + 1]
  record.x = tonumber(ARGV[i + 2])
  record.k = ARGV[i + 3]
  redis.call('HSET', KEYS[2], ARGV[i], cjson.encode(record))
  redis.call('ZADD', KEYS[4], record.x, ARGV[i])
  granted[#granted + 1] = {c = ARGV[i], k = record.k, x = record.x}
end
redis.call('HSET', KEYS[1], 'next', next)
if #granted > 0 then
  redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'promoted', seq = ARGV[4], grants = granted}))
end
return #granted

-- Record a draw's result exactly once: however many runners race here,
-- only the first writes; the rest learn it was done.
-- KEYS: draw, entrants, order, active
-- ARGV: now, channel, draw id, n, then n consumers in drawn order, then
--       (consumer, jti, expires_at, token) per winner
if redis.call('HGET', KEYS[1], 'drawn') == '1' then
  return 0
end
redis.call('HSET', KEYS[1], 'drawn', '1')
local n = tonumber(ARGV[4])
-- In chunks: Lua's unpack has a stack limit.
for first = 5, 4 + n, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(ARGV, first, math.min(first + 999, 4 + n)))
end
local granted = {}
for i = 5 + n, #ARGV, 4 do
  local record = cjson.decode(redis.call('HGET', KEYS[2], ARGV[i]))
  record.s = 'w'
  record.j = ARGV[i + 1]
  record.x = tonumber(ARGV[i + 2])
  record.k = ARGV[i + 3]
  redis.call('HSET', KEYS[2], ARGV[i], cjson.encode(record))
  redis.call('ZADD', KEYS[4], record.x, ARGV[i])
  granted[#granted + 1] = {c = ARGV[i], k = record.k, x = record.x}
end
redis.call('HSET', KEYS[1], 'next', #granted)
if #granted == 0 then
  -- cjson writes an empty table as {}, so spell the empty list out.
  redis.call('PUBLISH', ARGV[2], '{"t":"drawn","seq":"' .. ARGV[3] .. '","grants":[]}')
else
  redis.call('PUBLISH', ARGV[2], cjson.encode({t = 'drawn', seq = ARGV[3], grants = granted}))
end
return 1

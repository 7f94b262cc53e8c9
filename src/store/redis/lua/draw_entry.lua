-- One registration with the draw's status.
-- KEYS: draw, entrants, order; ARGV: consumer
-- Returns {} or {record, closed, drawn, redeemed, next, order length, entrants}
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then
  return {}
end
local d = redis.call('HMGET', KEYS[1], 'closed', 'drawn', 'redeemed', 'next')
return {
  current, d[1] or '0', d[2] or '0', tonumber(d[3] or '0'), tonumber(d[4] or '0'),
  redis.call('LLEN', KEYS[3]), redis.call('HLEN', KEYS[2]),
}

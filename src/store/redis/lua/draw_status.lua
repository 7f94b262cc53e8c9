-- KEYS: draw, entrants, order
-- Returns {seed, closed, drawn, entrants, redeemed, next, order length}
local d = redis.call('HMGET', KEYS[1], 'seed', 'closed', 'drawn', 'redeemed', 'next')
return {
  d[1] or '', d[2] or '0', d[3] or '0',
  redis.call('HLEN', KEYS[2]), tonumber(d[4] or '0'), tonumber(d[5] or '0'),
  redis.call('LLEN', KEYS[3]),
}

-- Register for a draw, or return the registration the consumer has.
-- KEYS: draw (hash), entrants (hash), accounts (hash: account → consumer)
-- ARGV: consumer, now, max_participants (-1 = none), refusal ('' = accept),
--       seed candidate, external id ('' = none), channel, draw id
redis.call('HSETNX', KEYS[1], 'seed', ARGV[5])
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current then
  return {'existing', current}
end
if redis.call('HGET', KEYS[1], 'closed') == '1' then
  return {'refused', 'closed'}
end
if ARGV[4] ~= '' then
  return {'refused', ARGV[4]}
end
if ARGV[6] ~= '' then
  local owner = redis.call('HGET', KEYS[3], ARGV[6])
  if owner and owner ~= ARGV[1] then
    return {'taken'}
  end
end
local max = tonumber(ARGV[3])
if max >= 0 and redis.call('HLEN', KEYS[2]) >= max then
  return {'refused', 'full'}
end
local fields = {s = 'r', at = tonumber(ARGV[2])}
if ARGV[6] ~= '' then
  fields.e = ARGV[6]
  redis.call('HSET', KEYS[3], ARGV[6], ARGV[1])
end
local record = cjson.encode(fields)
redis.call('HSET', KEYS[2], ARGV[1], record)
redis.call('PUBLISH', ARGV[7], cjson.encode({t = 'registered', seq = ARGV[8], c = ARGV[1]}))
return {'new', record}

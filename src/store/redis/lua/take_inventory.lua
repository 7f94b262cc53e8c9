-- Take one unit of an experience's inventory, never below zero.
-- KEYS: inventory (hash), updated (hash); ARGV: id, now, channel
-- Returns what is left, or -1 when the experience has no inventory limit.
local left = redis.call('HGET', KEYS[1], ARGV[1])
if not left then
  return -1
end
left = math.max(tonumber(left) - 1, 0)
redis.call('HSET', KEYS[1], ARGV[1], left)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
-- Only selling out is news worth a push; the count itself is read each second.
if left == 0 then
  redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'experience', id = ARGV[1]}))
end
return left

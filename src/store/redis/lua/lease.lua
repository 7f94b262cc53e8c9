-- Acquire or renew a lease. A new holder gets a new fencing token, which
-- leader writes must carry. KEYS: lease, fences (hash); ARGV: holder, ttl_ms
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('HGET', KEYS[2], 'fence'))
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.call('HINCRBY', KEYS[2], 'fence', 1)
end
return 0

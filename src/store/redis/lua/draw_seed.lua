-- The draw's seed; the candidate only if there was none. KEYS: draw; ARGV: seed
redis.call('HSETNX', KEYS[1], 'seed', ARGV[1])
return redis.call('HGET', KEYS[1], 'seed')

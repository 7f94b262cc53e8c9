-- Store an experience definition with its live inventory.
-- KEYS: definitions, inventory, updated (hashes); ARGV: id, json,
--       inventory ('' = no limit), create_only ('1'/'0'), now, channel
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], cjson.encode({t = 'experience', id = ARGV[1]}))
return 1

-- Store an experience definition with its live inventory. A sequence id,
-- once used, belongs to its experience for good: its line and draw keys stay
-- behind, and must never be inherited by another experience.
-- KEYS: definitions, inventory, updated, owners (hashes)
-- ARGV: id, json, inventory ('' = no limit), create_only ('1'/'0'), now,
--       channel, then the experience's sequence ids
-- Returns {'written'}, {'kept'} or {'owned', sequence, owner}
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {'kept'}
end
for i = 7, #ARGV do
  local owner = redis.call('HGET', KEYS[4], ARGV[i])
  if owner and owner ~= ARGV[1] then
    return {'owned', ARGV[i], owner}
  end
end
for i = 7, #ARGV do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], cjson.encode({t = 'experience', id = ARGV[1]}))
return {'written'}

-- Change one live value of an experience (inventory or announcement).
-- KEYS: values (hash), updated (hash); ARGV: id, value ('' = clear), now, channel
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], cjson.encode({t = 'experience', id = ARGV[1]}))
return 1

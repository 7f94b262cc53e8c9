-- A consumer's entry, its rank in line (-1 when not in line), and the line's
-- event version. KEYS: line, entries, stats; ARGV: consumer
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then
  return {}
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
local version = tonumber(redis.call('HGET', KEYS[3], 'version') or '0')
return {current, rank or -1, version}

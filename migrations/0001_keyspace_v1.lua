-- 0001: the first keyspace layout, described in src/store/redis/mod.rs.
-- The keyspace starts empty, so nothing moves; the version is recorded.
-- KEYS: schema version key; ARGV: this migration's version
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return current

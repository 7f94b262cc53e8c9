-- 0002: record which experience owns each sequence id, for good, so that a
-- sequence dropped from one experience never hands its line to another.
-- Backfills the owners hash from the stored definitions.
-- KEYS: schema version key (velvet:{_catalog}:schema); ARGV: this version
-- The catalog keys share its hash tag, so they are in the same slot.
local prefix = string.sub(KEYS[1], 1, -string.len('schema') - 1)
local definitions = redis.call('HGETALL', prefix .. 'definitions')
for i = 1, #definitions, 2 do
  local experience = cjson.decode(definitions[i + 1])
  for _, sequence in ipairs(experience.sequences or {}) do
    redis.call('HSETNX', prefix .. 'owners', sequence.id, definitions[i])
  end
end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return current

-- Counts of one queue. KEYS: line, active, window, stats; ARGV: now
local now = tonumber(ARGV[1])
local used = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. (now - 60000), '+inf')) do
  used = used + tonumber(string.match(member, ':(%d+)$'))
end
local s = redis.call('HMGET', KEYS[4], 'admitted', 'redeemed', 'version')
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf'),
  used,
  tonumber(s[1] or '0'),
  tonumber(s[2] or '0'),
  tonumber(s[3] or '0'),
}

-- Counts of one queue. KEYS: line, active, window, stats; ARGV: now
-- Returns {waiting, active, admitted last minute, admitted, redeemed,
--          version, time of the oldest batch in the last minute or -1}
local now = tonumber(ARGV[1])
local used = 0
local oldest = -1
local recent = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. (now - 60000), '+inf', 'WITHSCORES')
for i = 1, #recent, 2 do
  used = used + tonumber(string.match(recent[i], ':(%d+)$'))
  if oldest < 0 then
    oldest = tonumber(recent[i + 1])
  end
end
local s = redis.call('HMGET', KEYS[4], 'admitted', 'redeemed', 'version')
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf'),
  used,
  tonumber(s[1] or '0'),
  tonumber(s[2] or '0'),
  tonumber(s[3] or '0'),
  oldest,
}

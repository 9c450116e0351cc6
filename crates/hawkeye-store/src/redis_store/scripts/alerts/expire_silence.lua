-- Ends silence ARGV[1]; 1 if it was still running at ARGV[2] (unix ms).
-- KEYS: silences hash, ends zset.
local ends = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ends and tonumber(ends) > tonumber(ARGV[2]) then
  return 1
end
return 0

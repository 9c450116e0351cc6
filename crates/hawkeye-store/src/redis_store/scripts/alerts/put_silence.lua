-- Stores silence ARGV[1] = ARGV[2] until ARGV[3] (unix ms). Both keys
-- expire with the last silence. KEYS: silences hash, ends zset.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local at = math.floor(tonumber(last[2])) + 1
redis.call('PEXPIREAT', KEYS[1], at)
redis.call('PEXPIREAT', KEYS[2], at)
return 1

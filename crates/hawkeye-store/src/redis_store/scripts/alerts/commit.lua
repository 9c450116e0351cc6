-- A state change and its mail, atomically, if the state is still as read.
-- KEYS: state, outbox hash, outbox due zset, state index set (the state
--       keys written, for listing; entries of expired states are removed
--       by the listing).
-- ARGV: has-expected (1/0), expected, has-new (1/0), new, ttl ms,
--       then pairs of (outbox id, mail).
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
  redis.call('SADD', KEYS[4], KEYS[1])
  -- The index lives as long as its longest-lived state.
  if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[5]) then
    redis.call('PEXPIRE', KEYS[4], ARGV[5])
  end
else
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[4], KEYS[1])
end
for i = 6, #ARGV, 2 do
  -- The same notice recorded twice stays one entry.
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[3], 0, ARGV[i])
  end
end
if #ARGV >= 6 then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return 1

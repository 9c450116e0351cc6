-- The silences still running at ARGV[1] (unix ms), by end time; ended ones
-- are removed. KEYS: silences hash, ends zset.
local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(ended) do
  redis.call('HDEL', KEYS[1], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local silence = redis.call('HGET', KEYS[1], id)
  if silence then
    table.insert(out, silence)
  end
end
return out

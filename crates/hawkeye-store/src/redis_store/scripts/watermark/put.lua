-- Records one server's watermark: the newest second it has completely
-- flushed, and until when (Redis's clock, in ms) it counts as live.
-- docs/cluster.md, "Watermark".
-- KEYS: the watermark hash. ARGV: server id, second, live for (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. (now + live))
-- The hash outlives its longest-lived entry; every server extends it.
if redis.call('PTTL', KEYS[1]) < live then
  redis.call('PEXPIRE', KEYS[1], live)
end
return 1

-- The watermark of all live servers: the oldest of their newest flushed
-- seconds, and how many servers are live. Entries past their time are
-- removed. docs/cluster.md, "Watermark".
-- KEYS: the watermark hash. Returns {live servers, oldest second or ''}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('HGETALL', KEYS[1])
local oldest, live, gone = nil, 0, {}
for i = 1, #entries, 2 do
  local second, until_ms = string.match(entries[i + 1], '^(-?%d+) (%d+)$')
  if second and tonumber(until_ms) >= now then
    live = live + 1
    if oldest == nil or tonumber(second) < tonumber(oldest) then
      oldest = second
    end
  else
    gone[#gone + 1] = entries[i]
  end
end
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
end
return {live, oldest or ''}

-- Applies one chunk of one flush to one slot (a metric name, or one shard
-- of it), once and atomically. docs/storage.md, "Writes", explains it.
--
-- KEYS: index, flushes, flush_times, open hours, [shards], then one key
--   per record.
-- ARGV: ttl, server id, flush seq, chunk, shards (0: no shards key in KEYS;
--   else the count to record), wake (seconds), rollup ttl (how long the
--   index keeps a member), then per record:
--   index member, score, expiry, hour, n, and n items: for a set series (member
--   `s|...`) n members for PFADD; otherwise n pairs of `<op><field>` and
--   value, op `+` increment, `=` set, `<` keep min, `>` keep max. The
--   expiry is seconds from now (per-second data) or `@<unix seconds>`
--   (rollups: a fixed time after the data's own). The hour is that of a
--   rollup hour hash, listed in the open hours as `<hour>|<member>`; `-`
--   for any other key.
-- Returns 0 when the chunk was applied before, 1 when applied now, 2 when
-- applied now and the index changed for readers: a series added, a series
-- idle for `wake` seconds written again, or the shard count grown (the
-- writer records the name in the index change stream).
local ttl, server, seq_arg = ARGV[1], ARGV[2], ARGV[3]
local seq, chunk, shards = tonumber(seq_arg), tonumber(ARGV[4]), tonumber(ARGV[5])
local wake, rollup_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local index, flushes, times, hours = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local changed = false
-- Redis's clock, not the servers': their clocks may disagree.
local now = tonumber(redis.call('TIME')[1])

-- The marker is `<seq> <chunks applied>` of this server's last flush.
local done_seq, done_chunks = 0, 0
local marker = redis.call('HGET', flushes, server)
if marker then
  local s, c = string.match(marker, '^(%d+) (%d+)$')
  done_seq, done_chunks = tonumber(s), tonumber(c)
end
if done_seq > seq or (done_seq == seq and done_chunks > chunk) then
  -- Applied before. The marker is written again, unchanged, so that this
  -- call is a write: a WAIT after it (HAWKEYE_REDIS_WAIT_REPLICAS), maybe
  -- on another connection than the one that applied the chunk, then waits
  -- until the replicas have the chunk too (docs/cluster.md).
  redis.call('HSET', flushes, server, marker)
  return 0
end
if (done_seq == seq and done_chunks < chunk) or (done_seq < seq and chunk > 0) then
  return redis.error_reply('HAWKEYE_ORDER chunk ' .. chunk .. ' of flush ' .. seq_arg ..
    ' arrived before the chunk before it; retry the flush')
end

local first = 5
if shards > 0 then
  first = 6
  if shards > tonumber(redis.call('GET', KEYS[5]) or '1') then
    redis.call('SET', KEYS[5], shards)
    changed = true
  end
  redis.call('EXPIRE', KEYS[5], rollup_ttl)
end

local a = 8
local last_member, last_score = nil, 0
for k = first, #KEYS do
  local key, member, score, expiry = KEYS[k], ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local hour, n = ARGV[a + 3], tonumber(ARGV[a + 4])
  a = a + 5
  if hour ~= '-' then
    redis.call('ZADD', hours, hour, hour .. '|' .. member)
  end
  if string.sub(member, 1, 2) == 's|' then
    redis.call('PFADD', key, unpack(ARGV, a, a + n - 1))
    a = a + n
  else
    for i = a, a + 2 * n - 1, 2 do
      local op, field, value = string.sub(ARGV[i], 1, 1), string.sub(ARGV[i], 2), ARGV[i + 1]
      if op == '+' then
        redis.call('HINCRBYFLOAT', key, field, value)
      elseif op == '=' then
        redis.call('HSET', key, field, value)
      else
        local current = redis.call('HGET', key, field)
        local v = tonumber(value)
        if not current or (op == '<' and v < tonumber(current)) or (op == '>' and v > tonumber(current)) then
          redis.call('HSET', key, field, value)
        end
      end
    end
    a = a + 2 * n
  end
  if string.sub(expiry, 1, 1) == '@' then
    redis.call('EXPIREAT', key, string.sub(expiry, 2))
  else
    redis.call('EXPIRE', key, expiry)
  end
  -- A series' records come one after the other (its minute hashes, then
  -- its hour hash, with the same member and no newer score): the index
  -- entry written for the one before needs no second look.
  local s = tonumber(score)
  if member ~= last_member or s > last_score then
    local old = redis.call('ZSCORE', index, member)
    if not old or tonumber(old) < now - wake then
      changed = true
    end
    redis.call('ZADD', index, 'GT', score, member)
    last_member, last_score = member, s
  end
end
-- The index lives as long as the rollups: a series idle for a day still
-- answers a week's window; short windows read only members scored in them.
redis.call('ZREMRANGEBYSCORE', index, '-inf', now - rollup_ttl)
redis.call('EXPIRE', index, rollup_ttl)
-- An hour hash expires the rollup retention after its hour: so does its entry.
redis.call('ZREMRANGEBYSCORE', hours, '-inf', '(' .. math.floor((now - rollup_ttl) / 3600))
redis.call('EXPIRE', hours, rollup_ttl)

-- Record the chunk, and forget servers silent for longer than the retention.
redis.call('HSET', flushes, server, seq_arg .. ' ' .. (chunk + 1))
redis.call('ZADD', times, now, server)
local gone = redis.call('ZRANGEBYSCORE', times, '-inf', '(' .. (now - ttl), 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('HDEL', flushes, unpack(gone))
  redis.call('ZREM', times, unpack(gone))
end
redis.call('EXPIRE', flushes, ttl)
redis.call('EXPIRE', times, ttl)
if changed then
  return 2
end
return 1

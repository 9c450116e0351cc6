-- Replaces a series' day string with its merge with some of its hour
-- hashes, and deletes those hashes (and their entries in the slot's open
-- hours), if none of the keys changed since the compaction read them.
-- docs/storage.md, "Compaction".
--
-- KEYS: the day string, the slot's open hours, then the hour hashes (one
--   slot).
-- ARGV: the day string as read ('' when absent), the new day string, when
--   it expires (unix seconds), then per hash its version (`_v`) as read and
--   its open-hours member.
-- Returns 1 when replaced, 0 when a key changed (compacted again at the
-- next pass).
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then
  return 0
end
for k = 3, #KEYS do
  if (redis.call('HGET', KEYS[k], '_v') or '') ~= ARGV[2 * k - 2] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
for k = 3, #KEYS do
  redis.call('DEL', KEYS[k])
  redis.call('ZREM', KEYS[2], ARGV[2 * k - 1])
end
return 1

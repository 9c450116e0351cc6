-- Replaces a series' day string with its merge with some of its hour
-- hashes, and deletes those hashes, if none of the keys changed since the
-- compaction read them. docs/storage.md, "Compaction".
--
-- KEYS: the day string, then the hour hashes (one slot).
-- ARGV: the day string as read ('' when absent), the new day string, when
--   it expires (unix seconds), then each hash's version (`_v`) as read.
-- Returns 1 when replaced, 0 when a key changed (compacted again at the
-- next pass).
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then
  return 0
end
for k = 2, #KEYS do
  if (redis.call('HGET', KEYS[k], '_v') or '') ~= ARGV[k + 2] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
redis.call('DEL', unpack(KEYS, 2))
return 1

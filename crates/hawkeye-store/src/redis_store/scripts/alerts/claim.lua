-- Leases up to ARGV[3] outbox entries that are due at ARGV[1] until ARGV[2].
-- KEYS: outbox hash, outbox due zset. Returns id, mail, id, mail, ...
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local mail = redis.call('HGET', KEYS[1], id)
  if mail then
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    table.insert(out, id)
    table.insert(out, mail)
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out

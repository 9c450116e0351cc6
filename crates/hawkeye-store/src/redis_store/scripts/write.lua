-- Applies one flush of one series-minute, once (docs/storage.md, "Writes").
-- KEYS: data hash, index sorted set.
-- ARGV: ttl, server id, flush seq, index member, index score, then triples
-- of (op, field, value) with op `+` increment, `=` set, `<` keep min, `>` keep max.
local marker = '_f:' .. ARGV[2]
local seq = tonumber(ARGV[3])
local done = tonumber(redis.call('HGET', KEYS[1], marker) or '0')
if done >= seq then return 0 end
for i = 6, #ARGV, 3 do
  local op, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == '+' then
    redis.call('HINCRBYFLOAT', KEYS[1], field, value)
  elseif op == '=' then
    redis.call('HSET', KEYS[1], field, value)
  else
    local current = redis.call('HGET', KEYS[1], field)
    local v = tonumber(value)
    if not current or (op == '<' and v < tonumber(current)) or (op == '>' and v > tonumber(current)) then
      redis.call('HSET', KEYS[1], field, value)
    end
  end
end
redis.call('HSET', KEYS[1], marker, ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', ARGV[5], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1

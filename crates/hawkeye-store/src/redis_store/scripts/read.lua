-- Reads the minute hashes of a window read and answers one string, which
-- the reader decodes in place (a reply per field would cost the reader an
-- allocation each). docs/storage.md, "Reads".
--
-- KEYS: minute hashes (all in one slot on a cluster).
-- ARGV: per key, the number n of fields to read (0: the whole hash), then
--   the n field names.
-- Returns, per key and separated by ';': the values of the named fields,
-- separated by ',' (an absent field empty), or for a whole hash its
-- `field=value` pairs separated by ','.
local out = {}
local a = 1
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  local parts = {}
  if n == 0 then
    local all = redis.call('HGETALL', KEYS[k])
    for i = 1, #all, 2 do
      parts[#parts + 1] = all[i] .. '=' .. all[i + 1]
    end
  else
    local values = redis.call('HMGET', KEYS[k], unpack(ARGV, a + 1, a + n))
    for i = 1, n do
      parts[i] = values[i] or ''
    end
  end
  out[k] = table.concat(parts, ',')
  a = a + 1 + n
end
return table.concat(out, ';')

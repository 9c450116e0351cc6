-- Reads the minute hashes of a window read and answers one string, which
-- the reader decodes in place (a reply per field would cost the reader an
-- allocation each). docs/storage.md, "Reads".
--
-- KEYS: minute (or rollup hour) hashes, all in one slot on a cluster.
-- ARGV: runs of keys that ask for the same fields, in the order of KEYS:
--   the number of keys in the run, the number n of fields to read (0: the
--   whole hash), then the n field names. The agent's windows, which all end
--   at the same second, make one run.
-- Returns, per key and separated by ';': the values of the named fields,
-- separated by ',' (an absent field empty), or for a whole hash its
-- `field=value` pairs separated by ','.
local out = {}
local a = 1
local k = 1
while k <= #KEYS do
  local run = tonumber(ARGV[a])
  local n = tonumber(ARGV[a + 1])
  if not run or run < 1 or not n or n < 0 or k + run - 1 > #KEYS then
    return redis.error_reply('ERR read: malformed run at argument ' .. a)
  end
  for key = k, k + run - 1 do
    if n == 0 then
      local all = redis.call('HGETALL', KEYS[key])
      local parts = {}
      for i = 1, #all, 2 do
        parts[#parts + 1] = all[i] .. '=' .. all[i + 1]
      end
      out[key] = table.concat(parts, ',')
    elseif n == 1 then
      out[key] = redis.call('HGET', KEYS[key], ARGV[a + 2]) or ''
    else
      local values = redis.call('HMGET', KEYS[key], unpack(ARGV, a + 2, a + 1 + n))
      local parts = {}
      for i = 1, n do
        parts[i] = values[i] or ''
      end
      out[key] = table.concat(parts, ',')
    end
  end
  k = k + run
  a = a + 2 + n
end
return table.concat(out, ';')

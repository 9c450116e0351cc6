-- The store's marker: set to ARGV[1] when absent, kept ARGV[2] ms more.
-- KEYS: marker. Returns the marker held.
local marker = redis.call('GET', KEYS[1])
if not marker then
  marker = ARGV[1]
  redis.call('SET', KEYS[1], marker)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return marker

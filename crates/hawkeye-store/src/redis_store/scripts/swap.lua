-- Compare-and-swap of one alert state.
-- KEYS: state key. ARGV: `1` if a value is expected (else `0`), expected, new.
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1

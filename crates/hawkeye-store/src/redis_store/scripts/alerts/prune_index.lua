-- Removes from the state index the state keys that no longer exist
-- (expired). KEYS: the index set, then the state keys found missing.
-- The check and the removal are one script: a state written again since
-- it was found missing stays in the index, because reads find states
-- only through it (docs/alerts.md, "Where states live").
local removed = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    removed = removed + redis.call('SREM', KEYS[1], KEYS[i])
  end
end
return removed

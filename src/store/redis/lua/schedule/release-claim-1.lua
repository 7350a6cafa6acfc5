--[[ Ends a claim on a schedule entry, only if it is still the caller's.
  Input:
    KEYS[1] claims  sorted set: id -> claim expiry (epoch ms)
    ARGV[1] id
    ARGV[2] the claim's expiry as claim-due-2 set it for the caller (now + claimTtlMs)
  Output:
    1 if the claim was removed; 0 if it was gone, or had expired and another replica
    claimed the id since (its expiry differs), which is left alone.
]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0

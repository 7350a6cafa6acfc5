--[[
  Give up a code exchange's claim, only if it is still the caller's pending
  claim: an outcome settled meanwhile, or a claim another caller took after
  this one lapsed, stays.

  Input:
    KEYS[1] the exchange's key (RedisKeys.exchange)
    ARGV[1] the caller's pending marker, exactly as its claim wrote it

  Output: 1 released; 0 left alone
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

--[[ Claims due entries of the refresh schedule for one replica.
  Input:
    KEYS[1] due     sorted set: id -> when its refresh is due (epoch ms)
    KEYS[2] claims  sorted set: id -> when the replica handling it loses its claim (epoch ms)
    ARGV[1] now         epoch ms from the caller's clock (the server's TIME is never read)
    ARGV[2] claimTtlMs  how long a claim lasts
    ARGV[3] limit       the most ids to claim in this call (> 0)
  Output:
    array of ids, in due order, at most `limit`: each was due (score <= now) and not under
    a live claim. Each is removed from `due` and claimed until now + claimTtlMs; the
    handler plans its next due time (or drops it) and then removes the claim.
  Expired claims (the replica crashed or stalled) go back into `due` at their expiry,
  unless the id was planned again meanwhile, so they are claimed again in this call.
  Cost with nothing due: two range lookups, O(log n), whatever the number of ids.
]]
local due, claims = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])

local expired = redis.call('ZRANGEBYSCORE', claims, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #expired, 2 do
  local id = expired[i]
  redis.call('ZREM', claims, id)
  if not redis.call('ZSCORE', due, id) then
    redis.call('ZADD', due, expired[i + 1], id)
  end
end

-- An id planned again while still claimed stays in `due` and is skipped; looking
-- at `limit` + (live claims) candidates finds `limit` unclaimed ones if there are.
local live = redis.call('ZCARD', claims)
local candidates = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit + live)
local claimed = {}
for _, id in ipairs(candidates) do
  if #claimed >= limit then break end
  if not redis.call('ZSCORE', claims, id) then
    redis.call('ZREM', due, id)
    redis.call('ZADD', claims, now + ttl, id)
    claimed[#claimed + 1] = id
  end
end
return claimed

--[[
  Compare-and-set one credential, and announce the write, atomically.

  The fence check comes first: a writer whose fence is below the highest fence
  written for this credential lost its refresh lock (it may have been paused
  past its lease), so it is refused whatever version it read. Then the version
  check: the writer must have read the version that is stored now.

  The writer chooses the new version (above the one it read, and above any
  version it still remembers, so a store that restarted empty never numbers
  a new value like an old one) because a sealed value's AAD binds it.

  Input:
    KEYS[1] the credential hash (RedisKeys.credential)
    ARGV[1] the pub/sub channel (RedisKeys.updates)
    ARGV[2] the credential id "<appId>/<kind>[/<subject>]", named in the message
    ARGV[3] expected version (0 when nothing is stored)
    ARGV[4] the writer's fence
    ARGV[5] value
    ARGV[6] the new version (above ARGV[3])
    ARGV[7] fetchedAt (epoch ms)
    ARGV[8] expiresAt (epoch ms)
    ARGV[9] previousValidUntil (epoch ms), or "" when there is none
    ARGV[10] how long Redis keeps the hash from now (ms, for PEXPIRE): the
            credential's remaining life plus a retention for diagnosis. A
            relative time, so broker and Redis clocks need not agree; this
            script never reads the server clock
    ARGV[11] the kind's state (sealed like the value when encryption is on),
            or "" when there is none: the field is then removed, so a write
            without state never leaves an older version's state behind
    ARGV[12] renewableUntil (epoch ms), or "" when there is none (the field is
            then removed); the caller's ARGV[10] keeps the hash at least
            until then

  Output: { status, fields }
    status  1 written; 0 refused, the stored version is not ARGV[3];
            -1 refused, ARGV[4] is below the stored fence
    fields  the hash after the call, as HGETALL's flat { field, value, ... }
            (empty when nothing is stored)

  When written, publishes on ARGV[1] the hint { "id": ARGV[2], "version": ARGV[6] }
  inside the same script, so no write goes unannounced. The hint never
  carries the value or the state.
]]
--- @include "publish-credential"

local key = KEYS[1]
local fence = tonumber(ARGV[4])
local storedFence = tonumber(redis.call('HGET', key, 'fence') or '0')
if fence < storedFence then
  return { -1, redis.call('HGETALL', key) }
end
local floor = tonumber(redis.call('HGET', key, 'version') or '0')
local storedVersion = floor
if redis.call('HGET', key, 'deleted') then
  storedVersion = 0
end
if storedVersion ~= tonumber(ARGV[3]) or tonumber(ARGV[6]) <= floor then
  return { 0, redis.call('HGETALL', key) }
end
redis.call('HDEL', key, 'deleted')

redis.call('HSET', key,
  'value', ARGV[5],
  'version', ARGV[6],
  'fence', ARGV[4],
  'fetchedAt', ARGV[7],
  'expiresAt', ARGV[8])
if ARGV[9] == '' then
  redis.call('HDEL', key, 'previousValidUntil')
else
  redis.call('HSET', key, 'previousValidUntil', ARGV[9])
end
if ARGV[11] == '' then
  redis.call('HDEL', key, 'state')
else
  redis.call('HSET', key, 'state', ARGV[11])
end
-- Absent (a caller written before the argument existed) is none.
local renewableUntil = ARGV[12] or ''
if renewableUntil == '' then
  redis.call('HDEL', key, 'renewableUntil')
else
  redis.call('HSET', key, 'renewableUntil', renewableUntil)
end
redis.call('PEXPIRE', key, ARGV[10])

return { 1, publishCredential(key, ARGV[1], ARGV[2]) }

--[[
  Restore one credential with its own version, unless the store holds that
  version or a newer one; announce the write atomically. Used by a replica to
  hand back what a restarted (empty) store lost, or what it fetched while the
  store was unreachable. The fence is reset to 0: the lock's fence counter
  may have been lost with the rest of the store, and a holder starting again
  from fence 1 must be able to write.

  Input:
    KEYS[1] the credential hash (RedisKeys.credential)
    ARGV[1] the pub/sub channel (RedisKeys.updates)
    ARGV[2] the credential id "<appId>/<kind>", named in the message
    ARGV[3] version of the credential to restore
    ARGV[4] value
    ARGV[5] fetchedAt (epoch ms)
    ARGV[6] expiresAt (epoch ms)
    ARGV[7] previousValidUntil (epoch ms), or "" when there is none
    ARGV[8] how long Redis keeps the hash from now (ms, for PEXPIRE; relative,
            so broker and Redis clocks need not agree)

  Output: { status, fields }
    status  1 written; 0 refused, the stored version is ARGV[3] or newer
    fields  the hash after the call, as HGETALL's flat { field, value, ... }

  When written, publishes like cas-credential-1.lua.
]]
--- @include "publish-credential"

local key = KEYS[1]
local storedVersion = tonumber(redis.call('HGET', key, 'version') or '0')
if storedVersion >= tonumber(ARGV[3]) then
  return { 0, redis.call('HGETALL', key) }
end

redis.call('DEL', key)
redis.call('HSET', key,
  'value', ARGV[4],
  'version', ARGV[3],
  'fence', '0',
  'fetchedAt', ARGV[5],
  'expiresAt', ARGV[6])
if ARGV[7] ~= '' then
  redis.call('HSET', key, 'previousValidUntil', ARGV[7])
end
redis.call('PEXPIRE', key, ARGV[8])
return { 1, publishCredential(key, ARGV[1], ARGV[2]) }

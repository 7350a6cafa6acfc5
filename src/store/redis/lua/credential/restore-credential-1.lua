--[[
  Put one whole credential record (value, version, times and state as given) if the
  stored version is still the one the caller read; announce the write
  atomically. RedisTokenStore.restore uses it to reconcile a replica's copy
  with the store (see restore-plan.ts): to hand back what a restarted (empty)
  store lost, to write a credential WeChat issued after the stored one, or to
  renumber the stored one above a version a replica remembers. The stored
  fence is kept; over nothing it is 0: the lock's fence counter may have been
  lost with the rest of the store, and a holder starting again from fence 1
  must be able to write. Over a tombstone (delete-credential-1.lua) nothing is
  stored, but a record at or below the deleted version is refused: a replica
  that missed the delete must not bring the credential back. Its fence stands.

  Input:
    KEYS[1] the credential hash (RedisKeys.credential)
    ARGV[1] the pub/sub channel (RedisKeys.updates)
    ARGV[2] the credential id "<appId>/<kind>[/<subject>]", named in the message
    ARGV[3] expected version (0 when nothing is stored)
    ARGV[4] value
    ARGV[5] version to write (above ARGV[3])
    ARGV[6] fetchedAt (epoch ms)
    ARGV[7] expiresAt (epoch ms)
    ARGV[8] previousValidUntil (epoch ms), or "" when there is none
    ARGV[9] how long Redis keeps the hash from now (ms, for PEXPIRE; relative,
            so broker and Redis clocks need not agree)
    ARGV[10] the kind's state (sealed like the value when encryption is on),
            or "" when there is none (the record is put whole: no field of
            the one it replaces survives but the fence)
    ARGV[11] renewableUntil (epoch ms), or "" when there is none

  Output: { status, fields }
    status  1 written; 0 refused, the stored version is not ARGV[3]
    fields  the hash after the call, as HGETALL's flat { field, value, ... }

  When written, publishes like cas-credential-1.lua (no value, no state).
]]
--- @include "publish-credential"

local key = KEYS[1]
local floor = tonumber(redis.call('HGET', key, 'version') or '0')
local storedVersion = floor
if redis.call('HGET', key, 'deleted') then
  storedVersion = 0
end
if storedVersion ~= tonumber(ARGV[3]) or tonumber(ARGV[5]) <= floor then
  return { 0, redis.call('HGETALL', key) }
end

local fence = redis.call('HGET', key, 'fence') or '0'
redis.call('DEL', key)
redis.call('HSET', key,
  'value', ARGV[4],
  'version', ARGV[5],
  'fence', fence,
  'fetchedAt', ARGV[6],
  'expiresAt', ARGV[7])
if ARGV[8] ~= '' then
  redis.call('HSET', key, 'previousValidUntil', ARGV[8])
end
if ARGV[10] ~= '' then
  redis.call('HSET', key, 'state', ARGV[10])
end
-- Absent (a caller written before the argument existed) is none.
if (ARGV[11] or '') ~= '' then
  redis.call('HSET', key, 'renewableUntil', ARGV[11])
end
redis.call('PEXPIRE', key, ARGV[9])
return { 1, publishCredential(key, ARGV[1], ARGV[2]) }

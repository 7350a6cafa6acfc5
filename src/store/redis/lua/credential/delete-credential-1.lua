--[[
  Delete one credential if its stored version is still the one the caller
  read, leave a tombstone, and announce it, atomically.

  The tombstone is the same hash holding only `version` (the deleted one),
  `fence` (kept, so a lock holder that started before cannot write the
  credential back) and `deleted`. It reads as nothing; a write over it is
  numbered above the deleted version (cas-credential-1.lua), and a replica
  that missed the delete cannot restore a record at or below it
  (restore-credential-1.lua). It lives as long as the record would have
  (its PTTL: the credential's life, renewable window and retention), and at
  least ARGV[4].

  Input:
    KEYS[1] the credential hash (RedisKeys.credential)
    ARGV[1] the pub/sub channel (RedisKeys.updates)
    ARGV[2] the credential id "<appId>/<kind>[/<subject>]", named in the message
    ARGV[3] expected version (the one the caller read)
    ARGV[4] the tombstone's shortest life from now (ms, relative: this script
            never reads the server clock)

  Output: 1 deleted; 0 left alone (nothing stored, or another version is)

  When deleted, publishes the hint { "id": ARGV[2], "version": <deleted> }
  like a write: subscribers re-read the hash and find the tombstone.
]]
--- @include "publish-credential"

local key = KEYS[1]
if redis.call('HGET', key, 'deleted') then
  return 0
end
local storedVersion = redis.call('HGET', key, 'version')
if not storedVersion or tonumber(storedVersion) ~= tonumber(ARGV[3]) then
  return 0
end

local fence = redis.call('HGET', key, 'fence') or '0'
local keep = tonumber(ARGV[4])
local left = redis.call('PTTL', key)
if left > keep then
  keep = left
end
redis.call('DEL', key)
redis.call('HSET', key, 'version', storedVersion, 'fence', fence, 'deleted', '1')
redis.call('PEXPIRE', key, keep)
publishCredential(key, ARGV[1], ARGV[2])
return 1

--[[
  Put aside a credential record a replica refused to read (see
  RefusedCredentialError in credential-codec.ts: unencrypted while keys are
  configured, claiming more life than WeChat issues, or fetched "in the
  future" by the reader's clock), unless it changed since it was read, so the
  next refresh or grant can write over it.

  A record holding a kind's state (a user's grant: a refresh token that
  cannot be re-fetched) is not deleted: it is renamed beside the key (same
  hash slot) and kept for 30 days, for an operator to inspect or restore. A
  reader with a clock far behind must not destroy grants.

  Input:
    KEYS[1] the credential hash (RedisKeys.credential)
    ARGV[1] the `value` field as read
    ARGV[2] the `version` field as read

  Output: 1 deleted; 2 kept aside (KEYS[1] .. ':refused'); 0 left alone (it changed, or is gone)
]]
local key = KEYS[1]
if redis.call('HGET', key, 'value') == ARGV[1] and redis.call('HGET', key, 'version') == ARGV[2] then
  if redis.call('HEXISTS', key, 'state') == 1 then
    local aside = key .. ':refused'
    redis.call('RENAME', key, aside)
    redis.call('PEXPIRE', aside, 2592000000)
    return 2
  end
  redis.call('DEL', key)
  return 1
end
return 0

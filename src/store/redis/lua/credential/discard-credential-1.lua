--[[
  Delete a credential record a replica refused to read (see RefusedCredentialError
  in credential-codec.ts: unencrypted while keys are configured, or claiming
  more life than WeChat issues), unless it changed since it was read, so the
  next refresh can write over it.

  Input:
    KEYS[1] the credential hash (RedisKeys.credential)
    ARGV[1] the `value` field as read
    ARGV[2] the `version` field as read

  Output: 1 deleted; 0 left alone (it changed, or is gone)
]]
local key = KEYS[1]
if redis.call('HGET', key, 'value') == ARGV[1] and redis.call('HGET', key, 'version') == ARGV[2] then
  redis.call('DEL', key)
  return 1
end
return 0

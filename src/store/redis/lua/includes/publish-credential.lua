--[[
  publishCredential(key, channel, id): publishes on `channel` the JSON object
  { "id": id, "version": "<the hash's version>" } and returns the hash as
  HGETALL's flat list. The message is only a hint to re-read the hash: it
  carries no value, and a subscriber trusts nothing in it but the id (see
  decodeUpdateHint in credential-codec.ts).
]]
local function publishCredential(key, channel, id)
  local version = redis.call('HGET', key, 'version') or '0'
  redis.call('PUBLISH', channel, cjson.encode({ id = id, version = version }))
  return redis.call('HGETALL', key)
end

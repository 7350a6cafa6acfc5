--[[
  publishCredential(key, channel, id): publishes the hash at `key` on
  `channel` as the JSON object { "id": id, "fields": { <field>: <string> } }
  and returns the hash as HGETALL's flat list. The message format is the
  contract of decodeUpdateMessage in credential-codec.ts.
]]
local function publishCredential(key, channel, id)
  local flat = redis.call('HGETALL', key)
  local fields = {}
  for i = 1, #flat, 2 do
    fields[flat[i]] = flat[i + 1]
  end
  redis.call('PUBLISH', channel, cjson.encode({ id = id, fields = fields }))
  return flat
end

--[[
  Block an endpoint until a given time (WeChat answered 45009), keeping a
  later block already set (another replica may have seen the day turn).

  Input:
    KEYS[1] the endpoint's block (QuotaKeys.block)
    ARGV[1] epoch ms the block ends (next 00:00 Asia/Shanghai)
    ARGV[2] how long Redis keeps the key from now (ms, PEXPIRE): until a
            little after the block ends. Relative; the script never reads the
            server clock

  Output: the epoch ms the block ends after the call
]]
local wanted = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= wanted then
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return wanted

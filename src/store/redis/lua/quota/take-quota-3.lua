--[[
  Decide one upstream call against the ledger and, if allowed, count it; all
  in one step, so replicas sharing the ledger never overspend a budget.

  Checks, in order: the 45009 block, today's budget, then (force refreshes
  only) the gap since the last allowed force refresh. The time is the
  caller's (ARGV[1]); this script never reads the server clock.

  Input:
    KEYS[1] today's counter of the endpoint (QuotaKeys.count)
    KEYS[2] the endpoint's block (QuotaKeys.block): epoch ms it ends
    KEYS[3] the app's last allowed force refresh (QuotaKeys.lastForce);
            read and written only when ARGV[5] > 0
    ARGV[1] now (epoch ms)
    ARGV[2] today's budget, or -1 for unmetered
    ARGV[3] when today ends (epoch ms, next 00:00 Asia/Shanghai)
    ARGV[4] how long Redis keeps the counter from now (ms, PEXPIRE): until a
            little after today ends. Relative, so broker and Redis clocks
            need not agree
    ARGV[5] the minimum gap between force refreshes (ms); 0 for other endpoints

  Output: { allowed, reason, used, retryAt }
    allowed  1 counted; 0 refused
    reason   "" when allowed; "blocked", "budget" or "gap"
    used     today's count, including this call when allowed
    retryAt  epoch ms when a refused call may be allowed again; 0 when allowed
]]
local now = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local dayEnd = tonumber(ARGV[3])
local gap = tonumber(ARGV[5])

local used = tonumber(redis.call('GET', KEYS[1]) or '0')

local blockedUntil = tonumber(redis.call('GET', KEYS[2]) or '0')
if blockedUntil > now then
  return { 0, 'blocked', used, blockedUntil }
end

if budget >= 0 and used >= budget then
  return { 0, 'budget', used, dayEnd }
end

if gap > 0 then
  local last = tonumber(redis.call('GET', KEYS[3]) or '')
  if last and now < last + gap then
    return { 0, 'gap', used, last + gap }
  end
end

used = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if gap > 0 then
  redis.call('SET', KEYS[3], ARGV[1], 'PX', gap + 3600000)
end
return { 1, '', used, 0 }

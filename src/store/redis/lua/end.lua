--[[
  end: ends a live call (hang-up, reject, redirect, remote hang-up, expire now).
  KEYS[1] <shard>:meta
  ARGV[5] id  ARGV[6] appId ('' = any owner)  ARGV[7] tenantId  ARGV[8] now
  ARGV[9] result code  ARGV[10] subcode  ARGV[11] message  ARGV[12] only in this state ('' = any)
  Returns {1, call...} when ended; {0} notFound; {2, state} wrongState.
]]
local now = tonumber(ARGV[8])
local c = readCall(ARGV[5])
if not isLive(c, now) or not owns(c, ARGV[6], ARGV[7]) then return { 0 } end
if ARGV[12] ~= '' and c.state ~= ARGV[12] then return { 2, c.state } end
endCall(c, now, ARGV[9], ARGV[10], ARGV[11])
return { 1, flat(c) }

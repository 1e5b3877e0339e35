--[[
  keepAlive: one round trip. Moves a live call's deadline, in its hash only: the shard's
  `deadlines` set keeps the call at its earlier check time, and the sweep (expire.lua) moves it
  on when it finds the call kept alive since. So a keepAlive touches one key, not two.
  Runs WITHOUT lib.lua (redis-scripts.ts, STANDALONE): it is the hottest script, and the
  prelude's function definitions cost Redis about 3 µs per call, a third of this script's time
  (docs/benchmarks.md). Its call key is lib.lua's callKey spelled out.
  KEYS[1] <shard>:meta
  ARGV[5] id  ARGV[6] appId  ARGV[7] tenantId  ARGV[8] now  ARGV[9] new deadline
  Returns 1 when kept alive, 0 when the call is not live for that owner at now (notFound).
]]
local k = string.sub(KEYS[1], 1, -6) .. ':call:' .. ARGV[5]
local v = redis.call('HMGET', k, 'app', 'tenant', 'deadline')
if not v[1] or v[1] ~= ARGV[6] or v[2] ~= ARGV[7] or v[3] == '' or tonumber(v[3]) <= tonumber(ARGV[8]) then return 0 end
redis.call('HSET', k, 'lka', ARGV[8], 'deadline', ARGV[9])
return 1

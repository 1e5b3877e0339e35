--[[
  add-app: registers one app (one hash field; O(1) whatever the number of apps).
  KEYS[1] <shard 0>:meta
  ARGV[5] clientId (lower case)  ARGV[6] the registration as JSON  ARGV[7] most apps allowed
  Returns 1 when added; 0 when the clientId is taken; -1 when the limit is reached.
]]
local apps = key('apps')
if redis.call('HEXISTS', apps, ARGV[5]) == 1 then return 0 end
if redis.call('HLEN', apps) >= tonumber(ARGV[7]) then return -1 end
redis.call('HSET', apps, ARGV[5], ARGV[6])
redis.call('RPUSH', key('apporder'), ARGV[5])
return 1

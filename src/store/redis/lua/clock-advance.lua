--[[
  clock-advance: moves the shared clock on by `ms` atomically (the offset grows, the floor moves
  to the virtual time at wallNow plus ms), as src/clock/clock-math.ts advanceStep.
  KEYS[1] <shard 0>:meta
  ARGV[5] ms  ARGV[6] wallNow
  Returns the new state {wallOrigin, virtualOrigin, scale, offset, floor, version}; or 0 when no
  clock is stored yet.
]]
local ck = key('clock')
local v = redis.call('HMGET', ck, 'wo', 'vo', 'scale', 'offset', 'floor', 'version')
if not v[1] then return 0 end
local s = { wo = tonumber(v[1]), vo = tonumber(v[2]), scale = tonumber(v[3]), offset = tonumber(v[4]), floor = tonumber(v[5]),
  version = tonumber(v[6]) }
local ms = tonumber(ARGV[5])
local wall = tonumber(ARGV[6])
local now = math.max(s.floor, math.floor(s.vo + (wall - s.wo) * s.scale + s.offset))
s.offset = s.offset + ms
s.floor = now + ms
s.version = s.version + 1
local function str(n)
  return string.format('%.17g', n)
end
redis.call('HSET', ck, 'offset', str(s.offset), 'floor', str(s.floor), 'version', s.version)
return { str(s.wo), str(s.vo), str(s.scale), str(s.offset), str(s.floor), tostring(s.version) }

--[[
  clock-init: the shared clock, stored first if there is none; rebased to a new scale at wallNow;
  its floor raised to the virtual time at wallNow (same rules as src/clock/clock-math.ts).
  KEYS[1] <shard 0>:meta
  ARGV[5] wallOrigin  ARGV[6] virtualOrigin  ARGV[7] scale  ARGV[8] offset  ARGV[9] floor
  ARGV[10] version (of the proposal)  ARGV[11] wallNow
  Returns the stored state {wallOrigin, virtualOrigin, scale, offset, floor, version} as strings.
]]
local ck = key('clock')
local wall = tonumber(ARGV[11])
local function at(s)
  return math.max(s.floor, math.floor(s.vo + (wall - s.wo) * s.scale + s.offset))
end
local v = redis.call('HMGET', ck, 'wo', 'vo', 'scale', 'offset', 'floor', 'version')
local s
if not v[1] then
  s = { wo = tonumber(ARGV[5]), vo = tonumber(ARGV[6]), scale = tonumber(ARGV[7]), offset = tonumber(ARGV[8]),
    floor = tonumber(ARGV[9]), version = tonumber(ARGV[10]) }
  s.floor = math.max(s.floor, at(s))
else
  s = { wo = tonumber(v[1]), vo = tonumber(v[2]), scale = tonumber(v[3]), offset = tonumber(v[4]), floor = tonumber(v[5]),
    version = tonumber(v[6]) }
  local now = at(s)
  if s.scale ~= tonumber(ARGV[7]) then
    s = { wo = wall, vo = now, scale = tonumber(ARGV[7]), offset = 0, floor = now, version = s.version + 1 }
  else
    s.floor = now
    s.version = s.version + 1
  end
end
local function str(n)
  return string.format('%.17g', n)
end
redis.call('HSET', ck, 'wo', str(s.wo), 'vo', str(s.vo), 'scale', str(s.scale), 'offset', str(s.offset), 'floor',
  str(s.floor), 'version', s.version)
return { str(s.wo), str(s.vo), str(s.scale), str(s.offset), str(s.floor), tostring(s.version) }

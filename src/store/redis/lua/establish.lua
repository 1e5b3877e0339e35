--[[
  establish: moves up to `limit` of this shard's establishing calls whose establishAt <= now to
  established; queues their `established` facts.
  KEYS[1] <shard>:meta
  ARGV[5] now  ARGV[6] limit
  Returns {call..., call...}.
]]
local now = tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', key('establish'), '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', key('establish'), id)
  local c = readCall(id)
  if c and c.state == 'establishing' and isLive(c, now) then
    c.state = 'established'
    c.establish = ''
    redis.call('HSET', callKey(id), 'state', 'established', 'establish', '')
    enqueue(id, c.app, c.tenant, c.cb, 'established', '', snapshot(c), now)
    out[#out + 1] = flat(c)
  end
end
return out

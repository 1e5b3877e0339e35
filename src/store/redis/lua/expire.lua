--[[
  expire: ends up to `limit` of this shard's calls whose deadline <= now, oldest first, each at
  its own deadline; queues their `ended` facts. A call whose check time in `deadlines` came but
  whose deadline was moved on since (keepalive.lua) is only put back at its deadline. The shard's sweep is claimed by one instance at
  a time: while one drains a backlog, the others skip the shard.
  KEYS[1] <shard>:meta
  ARGV[5] now  ARGV[6] limit  ARGV[7..9] keepAlive result (code, subcode, message)
  ARGV[10..12] unanswered result  ARGV[13] the sweeping instance's id  ARGV[14] claim length (ms)
  Returns -1 when another instance holds the sweep; else {call..., call...}.
]]
local sweeper = key('sweeper')
local holder = redis.call('GET', sweeper)
if holder and holder ~= ARGV[13] then return -1 end
local limit = tonumber(ARGV[6])
local now = tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', key('deadlines'), '-inf', ARGV[5], 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(ids) do
  local c = readCall(id)
  if c and isLive(c, now) then
    redis.call('ZADD', key('deadlines'), c.deadline, id)
  elseif c and c.deadline ~= '' then
    local at = tonumber(c.deadline)
    if c.state == 'incoming' then endCall(c, at, ARGV[10], ARGV[11], ARGV[12])
    else endCall(c, at, ARGV[7], ARGV[8], ARGV[9]) end
    out[#out + 1] = flat(c)
  else
    redis.call('ZREM', key('deadlines'), id)
  end
end
-- A full batch means more may be due: keep the claim for the next one; else let it go.
if #ids == limit then redis.call('SET', sweeper, ARGV[13], 'PX', ARGV[14]) else redis.call('DEL', sweeper) end
return out

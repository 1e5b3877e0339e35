--[[
  answer: the bot answers a live incoming call; queues its `answered` fact.
  KEYS[1] <shard>:meta
  ARGV[5] id  ARGV[6] appId  ARGV[7] tenantId  ARGV[8] now  ARGV[9] deadline  ARGV[10] establishAt
  ARGV[11] the answer's properties (JSON object, merged over the resource by the client)
  Returns {1, call...} when answered; {0} notFound; {2, state} wrongState.
]]
local now = tonumber(ARGV[8])
local c = readCall(ARGV[5])
if not isLive(c, now) or not owns(c, ARGV[6], ARGV[7]) then return { 0 } end
if c.state ~= 'incoming' then return { 2, c.state } end
local k = callKey(c.id)
c.state = 'establishing'
c.deadline = ARGV[9]
c.establish = ARGV[10]
c.patch = ARGV[11]
local cb = cjson.decode(ARGV[11]).callbackUri
if type(cb) == 'string' then c.cb = cb end
redis.call('HSET', k, 'state', c.state, 'deadline', c.deadline, 'establish', c.establish, 'patch', c.patch, 'cb', c.cb)
redis.call('ZADD', key('deadlines'), c.deadline, c.id)
redis.call('ZADD', key('establish'), c.establish, c.id)
enqueue(c.id, c.app, c.tenant, c.cb, 'answered', '', snapshot(c), now)
return { 1, flat(c) }

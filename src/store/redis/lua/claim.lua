--[[
  claim: leases up to `limit` due outbox entries of this shard (heads of their calls' lines,
  next attempt <= now); each claim bumps the entry's fencing token.
  KEYS[1] <shard>:meta
  ARGV[5] now  ARGV[6] limit  ARGV[7] leaseUntil
  Returns {entry..., entry...}, each the entry's fields as a flat list.
]]
local seqs = redis.call('ZRANGEBYSCORE', key('due'), '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
local out = {}
for _, seq in ipairs(seqs) do
  local e = key('ob', seq)
  redis.call('ZADD', key('due'), ARGV[7], seq)
  redis.call('HSET', e, 'next', ARGV[7])
  redis.call('HINCRBY', e, 'lease', 1)
  out[#out + 1] = redis.call('HGETALL', e)
end
return out

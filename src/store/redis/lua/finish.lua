--[[
  finish: records a delivery attempt under a claim's fencing token, and what follows.
  KEYS[1] <shard>:meta
  ARGV[5] seq  ARGV[6] lease (fencing token)  ARGV[7] outcome: delivered | pending | dead
  ARGV[8] next attempt (pending)  ARGV[9] status code or ''  ARGV[10] error or ''
  ARGV[11] attempt time  ARGV[12] the attempt as JSON
  Returns 1 when recorded; 0 when the entry does not exist; -1 for a stale lease (nothing changed).
]]
local seq = ARGV[5]
local e = key('ob', seq)
local v = redis.call('HMGET', e, 'status', 'lease', 'call')
if not v[1] then return 0 end
if v[1] ~= 'pending' or v[2] ~= ARGV[6] then return -1 end
local status = ARGV[7]
redis.call('HINCRBY', e, 'attempts', 1)
redis.call('HSET', e, 'status', status, 'laststatus', ARGV[9], 'lasterror', ARGV[10])
redis.call('RPUSH', key('attempts', seq), ARGV[12])
if status == 'pending' then
  redis.call('HSET', e, 'next', ARGV[8])
  redis.call('ZADD', key('due'), ARGV[8], seq)
  return 1
end
redis.call('HSET', e, 'next', '')
if status == 'delivered' then redis.call('HSET', e, 'delivered', ARGV[11]) end
local id = retire(seq, status)
promote(id, tonumber(ARGV[11]))
return 1

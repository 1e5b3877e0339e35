--[[
  purge: deletes up to `limit` of this shard's calls ended at or before `before`, and finished
  outbox entries created by then (through the sorted sets: the cost follows what is deleted).
  A purged call's bot-action state goes with it; its entries in botdue are dropped by the
  bot-action store's next runDue (the call is gone).
  KEYS[1] <shard>:meta
  ARGV[5] before  ARGV[6] limit
  Returns how many calls were deleted.
]]
local limit = tonumber(ARGV[6])
for _, seq in ipairs(redis.call('ZRANGEBYSCORE', key('obdone'), '-inf', ARGV[5], 'LIMIT', 0, limit)) do
  local e = key('ob', seq)
  local id = redis.call('HGET', e, 'call')
  if id then redis.call('LREM', key('obcall', id), 1, seq) end
  redis.call('DEL', e, key('attempts', seq))
  redis.call('ZREM', key('obdone'), seq)
  redis.call('ZREM', key('oball'), seq)
  redis.call('ZREM', key('obdead'), seq)
end
local ids = redis.call('ZRANGEBYSCORE', key('ended'), '-inf', ARGV[5], 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('DEL', callKey(id))
  -- Its roster, operations and media state (redis-bot-action-store.ts) go with it.
  redis.call('DEL', key('bot', id))
  redis.call('ZREM', key('ended'), id)
  redis.call('ZREM', key('calls'), id)
  if redis.call('LLEN', key('line', id)) == 0 and redis.call('LLEN', key('obcall', id)) == 0 then
    redis.call('DEL', key('obcall', id))
  end
end
return #ids

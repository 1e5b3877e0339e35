--[[
  bot-commit: writes one call's bot-action change (roster, operations, media state) that the
  client computed from what it read at version `expected`, compare-and-set: nothing changes
  unless the call's bot-action version, and the call's state and deadline where asked, are still
  what the client read. The same step moves the call's operations in the shard's botdue set,
  sets the call's state, and queues the notifications (given rendered, as the domain decided
  them) behind the call's earlier outbox entries. No domain decision is taken here.
  Keys of the call: <shard>:bot:<id> (hash: v = version, the rest as redis-bot-action-store.ts
  writes them); shard-wide: <shard>:botdue (sorted set, member "<callId>|<opId>", score dueAt).
  KEYS[1] <shard>:meta
  ARGV[5] call id  ARGV[6] appId ('' = any owner)  ARGV[7] tenantId
  ARGV[8] liveAt: the call must be live then ('' = need not be)
  ARGV[9] the call's state as read ('*' = not checked)  ARGV[10] its deadline as read ('*' = not checked)
  ARGV[11] the bot-action version read  ARGV[12] the call's new state ('' = unchanged)
  ARGV[13] fields to set (n)  ARGV[14] fields to delete (n)  ARGV[15] botdue moves (n)
  ARGV[16] notifications (n), then: n field, value pairs; n fields; n member, dueAt pairs
  (dueAt '' = out of the set); n at, notification JSON pairs.
  Returns 1 when committed; 0 when the call is not live (or not that owner's) at liveAt, or gone
  (nothing changed); -1 when the version, state or deadline moved since the read (nothing
  changed: read again).
]]
local id = ARGV[5]
local c = readCall(id)
if ARGV[8] ~= '' and (not isLive(c, tonumber(ARGV[8])) or not owns(c, ARGV[6], ARGV[7])) then return 0 end
if ARGV[9] ~= '*' and (c == nil or c.state ~= ARGV[9]) then return -1 end
if ARGV[10] ~= '*' and (c == nil or c.deadline ~= ARGV[10]) then return -1 end
local bot = key('bot', id)
local v = tonumber(redis.call('HGET', bot, 'v') or '0')
if v ~= tonumber(ARGV[11]) then return -1 end
local nSet, nDel, nDue, nNote = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
-- A call that is gone keeps no bot-action state and is told nothing.
if c == nil and (nSet > 0 or nNote > 0 or ARGV[12] ~= '') then return 0 end
local i = 17
if nSet > 0 then
  local kv = {}
  for j = 0, 2 * nSet - 1 do kv[#kv + 1] = ARGV[i + j] end
  redis.call('HSET', bot, unpack(kv))
  i = i + 2 * nSet
end
for j = 0, nDel - 1 do redis.call('HDEL', bot, ARGV[i + j]) end
i = i + nDel
if nSet > 0 or nDel > 0 or v > 0 then redis.call('HSET', bot, 'v', v + 1) end
local due = key('botdue')
for j = 0, nDue - 1 do
  local member, at = ARGV[i + 2 * j], ARGV[i + 2 * j + 1]
  if at == '' then redis.call('ZREM', due, member) else redis.call('ZADD', due, at, member) end
end
i = i + 2 * nDue
if ARGV[12] ~= '' then
  c.state = ARGV[12]
  redis.call('HSET', callKey(id), 'state', c.state)
end
for j = 0, nNote - 1 do
  enqueue(id, c.app, c.tenant, c.cb, 'notification', '', ARGV[i + 2 * j + 1], tonumber(ARGV[i + 2 * j]))
end
return 1

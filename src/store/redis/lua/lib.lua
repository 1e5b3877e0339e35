--[[
  Prelude prepended to every callkeeper script that touches a shard (redis-scripts.ts does it).

  Every shard script gets the same leading arguments:
    KEYS[1]  <shard>:meta   the shard's counters (obseq, pending, overflowed); its hash tag
                            {ck:<n>} routes the script, and every key it touches shares it
    ARGV[1]  shard count    ARGV[2]  this shard's number
    ARGV[3]  per-call bound on pending outbox entries   ARGV[4]  this shard's bound on them
  Operation arguments start at ARGV[5]. Time is always an argument ("now"); no script reads
  Redis's clock. Keys of one call: <shard>:call:<id> (hash), <shard>:line:<id> (its pending
  entries, oldest first), <shard>:obcall:<id> (all its entries). Shard-wide: deadlines,
  establish, ended (sorted sets of call ids), calls (creation order), due (heads of lines by
  next attempt), pend (pending entries), obdone (finished entries by creation), oball, obdead.
]]
local META = KEYS[1]
local P = string.sub(META, 1, -6)
local SHARDS = tonumber(ARGV[1])
local SHARD = tonumber(ARGV[2])
local PERCALL = tonumber(ARGV[3])
local TOTAL = tonumber(ARGV[4])

local function key(...)
  return P .. ':' .. table.concat({ ... }, ':')
end

local function callKey(id)
  return key('call', id)
end

-- The call's next entry, if any, becomes due at `at` (only a line's head is ever due).
local function promote(id, at)
  local head = redis.call('LINDEX', key('line', id), 0)
  if head then
    redis.call('ZADD', key('due'), 'NX', at, head)
    redis.call('HSET', key('ob', head), 'next', at)
  end
end

-- Takes a pending entry out of its line as delivered or dead (not promoting the next).
local function retire(seq, status)
  local e = key('ob', seq)
  local id = redis.call('HGET', e, 'call')
  redis.call('LREM', key('line', id), 1, seq)
  redis.call('ZREM', key('due'), seq)
  redis.call('ZREM', key('pend'), seq)
  redis.call('ZADD', key('obdone'), redis.call('HGET', e, 'created'), seq)
  if status == 'dead' then redis.call('ZADD', key('obdead'), seq, seq) end
  redis.call('HINCRBY', META, 'pending', -1)
  return id
end

-- The outbox bound: the oldest pending entry goes to the dead letters, counted.
local function overflow(seq, at)
  local e = key('ob', seq)
  if redis.call('HGET', e, 'status') ~= 'pending' then return end
  redis.call('HSET', e, 'status', 'dead', 'dead', 'overflow', 'next', '')
  redis.call('HINCRBY', e, 'lease', 1)
  local id = retire(seq, 'dead')
  redis.call('HINCRBY', META, 'overflowed', 1)
  promote(id, at)
end

-- Queues one fact for call `id` behind its pending ones; returns its seq.
local function enqueue(id, app, tenant, cb, transition, result, snapshot, at)
  local seq = redis.call('HINCRBY', META, 'obseq', 1) * SHARDS + SHARD
  local line = key('line', id)
  local head = redis.call('LLEN', line) == 0
  redis.call('HSET', key('ob', seq), 'seq', seq, 'call', id, 'app', app, 'tenant', tenant, 'cb', cb, 'tr', transition,
    'result', result, 'snap', snapshot, 'created', at, 'status', 'pending', 'attempts', 0, 'lease', 0,
    'next', head and at or '')
  redis.call('RPUSH', line, seq)
  redis.call('RPUSH', key('obcall', id), seq)
  redis.call('ZADD', key('oball'), seq, seq)
  redis.call('ZADD', key('pend'), seq, seq)
  if head then redis.call('ZADD', key('due'), at, seq) end
  local pending = redis.call('HINCRBY', META, 'pending', 1)
  if not head and redis.call('LLEN', line) > PERCALL then overflow(redis.call('LINDEX', line, 0), at) end
  if pending > TOTAL then overflow(redis.call('ZRANGE', key('pend'), 0, 0)[1], at) end
  return seq
end

-- The fact's snapshot of the call as it is now (JSON built around the stored JSON texts, which
-- are never decoded here: cjson would change numbers and empty arrays).
local function snapshot(c)
  return '{"id":' .. cjson.encode(c.id) .. ',"owner":{"appId":' .. cjson.encode(c.app) .. ',"tenantId":' ..
    cjson.encode(c.tenant) .. '},"direction":' .. cjson.encode(c.dir) .. ',"state":' .. cjson.encode(c.state) ..
    ',"resource":' .. c.res .. ',"resourcePatch":' .. (c.patch ~= '' and c.patch or 'null') .. '}'
end

local CALL_FIELDS = { 'id', 'app', 'tenant', 'state', 'dir', 'created', 'lka', 'deadline', 'establish', 'ended', 'rc',
  'rs', 'rm', 'res', 'patch', 'cb' }

local function readCall(id)
  local v = redis.call('HMGET', callKey(id), unpack(CALL_FIELDS))
  if not v[1] then return nil end
  local c = {}
  for i, f in ipairs(CALL_FIELDS) do c[f] = v[i] or '' end
  return c
end

-- A call as the flat list the client reads back (field, value, ...).
local function flat(c)
  local out = {}
  for _, f in ipairs(CALL_FIELDS) do
    out[#out + 1] = f
    out[#out + 1] = c[f]
  end
  return out
end

local function isLive(c, now)
  return c ~= nil and c.deadline ~= '' and tonumber(c.deadline) > now
end

local function owns(c, app, tenant)
  return app == '' or (c.app == app and c.tenant == tenant)
end

-- Ends call c at `at` with a result; queues its `ended` fact.
local function endCall(c, at, rc, rs, rm)
  local k = callKey(c.id)
  c.state = 'terminated'
  c.deadline = ''
  c.establish = ''
  c.ended = tostring(at)
  c.rc, c.rs, c.rm = tostring(rc), tostring(rs), rm
  redis.call('HSET', k, 'state', 'terminated', 'deadline', '', 'establish', '', 'ended', at, 'rc', rc, 'rs', rs, 'rm', rm)
  redis.call('ZREM', key('deadlines'), c.id)
  redis.call('ZREM', key('establish'), c.id)
  redis.call('ZADD', key('ended'), at, c.id)
  local result = '{"code":' .. rc .. ',"subcode":' .. rs .. ',"message":' .. cjson.encode(rm) .. '}'
  enqueue(c.id, c.app, c.tenant, c.cb, 'ended', result, snapshot(c), at)
end

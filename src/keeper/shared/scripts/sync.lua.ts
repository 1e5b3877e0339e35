/** One replica's heartbeat: joins or stays in the live set, renews the leases it still holds. */
export const SYNC_LUA = `
-- sync: heartbeat + lease renewal for one replica.
-- KEYS[1] replicas (zset: replicaId -> heartbeat expiry)
-- KEYS[2] leases   (hash: bucket -> "holder|fence|expiresAt")
-- KEYS[3] versions (hash: bucket -> change counter)
-- ARGV[1] now (epoch ms, the caller's clock)
-- ARGV[2] ttl (ms)
-- ARGV[3] replicaId
-- ARGV[4] the leases the replica believes it holds, in one string: "bucket:fence:version,..."
--   (version: the bucket's change counter as the replica last read it)
-- Returns { live replicaIds..., "|", lost buckets..., "|", bucket, version pairs of the held buckets whose version moved }
-- The held leases are read, renewed and their versions read with a few commands in all (HMGET,
-- HSET of many fields), not one each: a replica holds hundreds of buckets and syncs every ttl/4.
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local me = ARGV[3]
redis.call('ZADD', KEYS[1], now + ttl, me)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(out, '|')
local buckets, fences, known = {}, {}, {}
for b, f, v in string.gmatch(ARGV[4], '(%d+):(%d+):(%d+)') do
  table.insert(buckets, b)
  table.insert(fences, f)
  table.insert(known, v)
end
-- In slices: unpack() of a whole table is bounded by Lua's stack (a few thousand values).
local SLICE = 500
local kept = {}
local renew = {}
local expires = me .. '|'
for from = 1, #buckets, SLICE do
  local to = math.min(from + SLICE - 1, #buckets)
  local leases = redis.call('HMGET', KEYS[2], unpack(buckets, from, to))
  for i = from, to do
    local lease = leases[i - from + 1]
    local ok = false
    if lease then
      local holder, f, exp = string.match(lease, '^(.*)|(%d+)|(%d+)$')
      ok = holder == me and f == fences[i] and tonumber(exp) > now
    end
    if ok then
      table.insert(kept, i)
      table.insert(renew, buckets[i])
      table.insert(renew, expires .. fences[i] .. '|' .. (now + ttl))
    else
      table.insert(out, buckets[i])
    end
  end
end
table.insert(out, '|')
for from = 1, #renew, 2 * SLICE do
  redis.call('HSET', KEYS[2], unpack(renew, from, math.min(from + 2 * SLICE - 1, #renew)))
end
for from = 1, #kept, SLICE do
  local to = math.min(from + SLICE - 1, #kept)
  local ids = {}
  for j = from, to do table.insert(ids, buckets[kept[j]]) end
  local versions = redis.call('HMGET', KEYS[3], unpack(ids))
  for j = from, to do
    local i = kept[j]
    local v = versions[j - from + 1] or '0'
    if v ~= known[i] then
      table.insert(out, buckets[i])
      table.insert(out, v)
    end
  end
end
return out
`;

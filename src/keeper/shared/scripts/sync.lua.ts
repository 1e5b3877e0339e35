/** One replica's heartbeat: joins or stays in the live set, renews the leases it still holds. */
export const SYNC_LUA = `
-- sync: heartbeat + lease renewal for one replica.
-- KEYS[1] replicas (zset: replicaId -> heartbeat expiry)
-- KEYS[2] leases   (hash: bucket -> "holder|fence|expiresAt")
-- KEYS[3] versions (hash: bucket -> change counter)
-- ARGV[1] now (epoch ms, the caller's clock)
-- ARGV[2] ttl (ms)
-- ARGV[3] replicaId
-- ARGV[4..] bucket, fence pairs: the leases the replica believes it holds
-- Returns { live replicaIds..., "|", lost buckets..., "|", version of each held bucket in ARGV order (0 if lost) }
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local me = ARGV[3]
redis.call('ZADD', KEYS[1], now + ttl, me)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(out, '|')
local versions = {}
for i = 4, #ARGV, 2 do
  local b = ARGV[i]
  local fence = ARGV[i + 1]
  local lease = redis.call('HGET', KEYS[2], b)
  local ok = false
  if lease then
    local holder, f, exp = string.match(lease, '^(.*)|(%d+)|(%d+)$')
    if holder == me and f == fence and tonumber(exp) > now then ok = true end
  end
  if ok then
    redis.call('HSET', KEYS[2], b, me .. '|' .. fence .. '|' .. (now + ttl))
    table.insert(versions, redis.call('HGET', KEYS[3], b) or '0')
  else
    table.insert(out, b)
    table.insert(versions, '0')
  end
end
table.insert(out, '|')
for _, v in ipairs(versions) do table.insert(out, v) end
return out
`;

/** Gives leases back (a rebalance, or close()): only those still held under the given fence. */
export const RELEASE_LUA = `
-- release: give back bucket leases; leave the live set when ARGV[2] is "leave".
-- KEYS[1] leases (hash: bucket -> "holder|fence|expiresAt")
-- KEYS[2] replicas (zset)
-- ARGV[1] replicaId, ARGV[2] "leave" or "stay", ARGV[3..] bucket, fence pairs
-- Returns the number of leases released
local me = ARGV[1]
local n = 0
for i = 3, #ARGV, 2 do
  local lease = redis.call('HGET', KEYS[1], ARGV[i])
  if lease then
    local holder, f = string.match(lease, '^(.*)|(%d+)|')
    if holder == me and f == ARGV[i + 1] then
      redis.call('HDEL', KEYS[1], ARGV[i])
      n = n + 1
    end
  end
end
if ARGV[2] == 'leave' then redis.call('ZREM', KEYS[2], me) end
return n
`;

/** Stores successful keepAlives, fenced: a replica that lost a bucket's lease cannot write to it. */
export const RECORD_LUA = `
-- record: store the last successful keepAlive of calls, for whoever holds them next.
-- KEYS[1] leases (hash: bucket -> "holder|fence|expiresAt")
-- KEYS[2..] the last-successes hash of each entry's bucket, in ARGV order
-- ARGV[1] now, ARGV[2] replicaId, ARGV[3..] callId, bucket, fence, sentAt quadruples
-- Returns the callIds refused: lease lost (fenced) or call no longer tracked
local now = tonumber(ARGV[1])
local me = ARGV[2]
local refused = {}
local k = 2
for i = 3, #ARGV, 4 do
  local id, b, fence, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local lease = redis.call('HGET', KEYS[1], b)
  local ok = false
  if lease then
    local holder, f, exp = string.match(lease, '^(.*)|(%d+)|(%d+)$')
    ok = holder == me and f == fence and tonumber(exp) > now
  end
  if ok and redis.call('HEXISTS', KEYS[k], id) == 1 then
    local prev = tonumber(redis.call('HGET', KEYS[k], id) or '0')
    if tonumber(at) > prev then redis.call('HSET', KEYS[k], id, at) end
  else
    table.insert(refused, id)
  end
  k = k + 1
end
return refused
`;

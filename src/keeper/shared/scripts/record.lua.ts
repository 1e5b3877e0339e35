/** Stores successful keepAlives, fenced: a replica that lost a bucket's lease cannot write to it. */
export const RECORD_LUA = `
-- record: store the last successful keepAlive of calls, for whoever holds them next.
-- KEYS[1] leases (hash: bucket -> "holder|fence|expiresAt")
-- KEYS[2..] the last-successes hash of each entry's bucket, in ARGV order
-- ARGV[1] now, ARGV[2] replicaId, ARGV[3..] callId, bucket, fence, sentAt quadruples
-- Returns the callIds refused: lease lost (fenced) or call no longer tracked
local now = tonumber(ARGV[1])
local me = ARGV[2]
-- Each bucket's lease is read once for the batch (HMGET, in slices), not once per call.
local buckets, seen = {}, {}
for i = 4, #ARGV, 4 do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    table.insert(buckets, ARGV[i])
  end
end
local lease = {}
for from = 1, #buckets, 500 do
  local to = math.min(from + 499, #buckets)
  local got = redis.call('HMGET', KEYS[1], unpack(buckets, from, to))
  for j = from, to do lease[buckets[j]] = got[j - from + 1] end
end
local refused = {}
local k = 2
for i = 3, #ARGV, 4 do
  local id, b, fence, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ok = false
  local l = lease[b]
  if l then
    local holder, f, exp = string.match(l, '^(.*)|(%d+)|(%d+)$')
    ok = holder == me and f == fence and tonumber(exp) > now
  end
  -- The last-successes hash holds every tracked call (track writes it, untrack and end remove it).
  local prev = ok and redis.call('HGET', KEYS[k], id)
  if prev then
    if tonumber(at) > tonumber(prev) then redis.call('HSET', KEYS[k], id, at) end
  else
    table.insert(refused, id)
  end
  k = k + 1
end
return refused
`;

/** Graph said the call is gone (404 8522): remove it, if this replica still holds it (fenced). */
export const END_LUA = `
-- end: remove an ended call, only by the lease holder.
-- KEYS[1] leases, KEYS[2] the bucket's calls, KEYS[3] the bucket's last successes, KEYS[4] versions
-- ARGV[1] now, ARGV[2] replicaId, ARGV[3] callId, ARGV[4] bucket, ARGV[5] fence
-- Returns { "ended", meta JSON } | { "fenced" } | { "notTracked" }
local now = tonumber(ARGV[1])
local lease = redis.call('HGET', KEYS[1], ARGV[4])
local ok = false
if lease then
  local holder, f, exp = string.match(lease, '^(.*)|(%d+)|(%d+)$')
  ok = holder == ARGV[2] and f == ARGV[5] and tonumber(exp) > now
end
if not ok then return { 'fenced' } end
local meta = redis.call('HGET', KEYS[2], ARGV[3])
if not meta then return { 'notTracked' } end
redis.call('HDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
return { 'ended', meta }
`;

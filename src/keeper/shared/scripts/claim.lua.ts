/** Takes the leases of buckets that are free or lapsed; each taken lease gets a new fencing token. */
export const CLAIM_LUA = `
-- claim: take free or lapsed bucket leases.
-- KEYS[1] leases (hash: bucket -> "holder|fence|expiresAt")
-- KEYS[2] fence counter (string, INCR)
-- KEYS[3] versions (hash: bucket -> change counter)
-- ARGV[1] now, ARGV[2] ttl, ARGV[3] replicaId, ARGV[4..] buckets wanted
-- Returns { bucket, fence, version, ... } for each lease taken (others are held by a live lease)
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local me = ARGV[3]
local out = {}
for i = 4, #ARGV do
  local b = ARGV[i]
  local lease = redis.call('HGET', KEYS[1], b)
  local free = true
  if lease then
    local holder, f, exp = string.match(lease, '^(.*)|(%d+)|(%d+)$')
    if tonumber(exp) > now and holder ~= me then free = false end
  end
  if free then
    local fence = redis.call('INCR', KEYS[2])
    redis.call('HSET', KEYS[1], b, me .. '|' .. fence .. '|' .. (now + ttl))
    table.insert(out, b)
    table.insert(out, tostring(fence))
    table.insert(out, redis.call('HGET', KEYS[3], b) or '0')
  end
end
return out
`;

/** Registers a call cluster-wide, with a phase index from one counter so slots spread over the whole fleet. */
export const TRACK_LUA = `
-- track: add a call to its bucket (no-op if there already).
-- KEYS[1] the bucket's calls (hash: callId -> meta JSON)
-- KEYS[2] the bucket's last successes (hash: callId -> epoch ms)
-- KEYS[3] versions (hash: bucket -> change counter)
-- KEYS[4] phase counter (string, INCR)
-- KEYS[5] leases (hash: bucket -> "holder|fence|expiresAt")
-- ARGV[1] now, ARGV[2] callId, ARGV[3] bucket, ARGV[4] lastSuccessAt, ARGV[5] meta JSON without the phase
--   (the script adds "p": the phase index)
-- Returns { 1 (added) or 0 (already tracked), phase index, lease string or "" }
local existing = redis.call('HGET', KEYS[1], ARGV[2])
local lease = redis.call('HGET', KEYS[5], ARGV[3]) or ''
if existing then
  return { 0, cjson.decode(existing).p, lease }
end
local p = redis.call('INCR', KEYS[4])
local meta = cjson.decode(ARGV[5])
meta.p = p
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(meta))
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
return { 1, p, lease }
`;

/** Removes a call cluster-wide (untrack, or its end): the holder drops it at its next look. */
export const UNTRACK_LUA = `
-- untrack: remove a call from its bucket.
-- KEYS[1] the bucket's calls, KEYS[2] the bucket's last successes, KEYS[3] versions
-- ARGV[1] callId, ARGV[2] bucket
-- Returns the call's meta JSON if it was tracked, false otherwise
local meta = redis.call('HGET', KEYS[1], ARGV[1])
if not meta then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return meta
`;

/**
 * throttle-hit: counts one request of a key in the fixed window holding now.
 * KEYS[1] the counters (hash: throttle key -> "windowStart:count")
 * ARGV[1] throttle key, ARGV[2] window start (virtual epoch ms), ARGV[3] limit
 * Returns the request's count in the window, or 0 when the limit is reached (not counted).
 */
export const THROTTLE_HIT = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local count = 0
if cur then
  local sep = string.find(cur, ':', 1, true)
  if string.sub(cur, 1, sep - 1) == ARGV[2] then count = tonumber(string.sub(cur, sep + 1)) end
end
if count >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (count + 1))
return count + 1
`;

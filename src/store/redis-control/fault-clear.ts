/**
 * fault-clear: deletes every rule.
 * KEYS[1] the order (zset of ids), KEYS[2] the prefix of rule hashes (id appended)
 * Returns how many rules there were.
 */
export const FAULT_CLEAR = `
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', KEYS[2] .. id)
end
redis.call('DEL', KEYS[1])
return n
`;

/**
 * fault-remove: deletes one rule.
 * KEYS[1] the rule's hash, KEYS[2] the order (zset of ids)
 * ARGV[1] id
 * Returns 1 if it existed, 0 otherwise.
 */
export const FAULT_REMOVE = `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`;

/**
 * fault-add: stores a rule, replacing one with the same id (it then moves to the end).
 * KEYS[1] the rule's hash, KEYS[2] the order (zset of ids by seq), KEYS[3] the seq counter
 * ARGV[1] id, ARGV[2] rule JSON, ARGV[3] remaining ('' = unlimited), ARGV[4] until ('' = never)
 * Returns 1.
 */
export const FAULT_ADD = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rule', ARGV[2], 'remaining', ARGV[3], 'until', ARGV[4])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
return 1
`;

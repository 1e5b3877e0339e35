/**
 * journal-append: adds entries (oldest first) and keeps the newest ones.
 * KEYS[1] the journal (list, newest first)
 * ARGV[1] how many to keep, ARGV[2..] entry JSON, in the order they happened
 * Returns the journal's length.
 */
export const JOURNAL_APPEND = `
redis.call('LPUSH', KEYS[1], unpack(ARGV, 2))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)
return redis.call('LLEN', KEYS[1])
`;

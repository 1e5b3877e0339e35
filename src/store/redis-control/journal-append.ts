/**
 * journal-append: adds an entry and keeps the newest ones.
 * KEYS[1] the journal (list, newest first)
 * ARGV[1] entry JSON, ARGV[2] how many to keep
 * Returns the journal's length.
 */
export const JOURNAL_APPEND = `
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return redis.call('LLEN', KEYS[1])
`;

/**
 * fault-consume: takes one application of a rule.
 * KEYS[1] the rule's hash
 * ARGV[1] now (virtual epoch ms)
 * Returns {1, remaining} (remaining '' = unlimited), or {0, 'notFound' | 'expired' | 'exhausted'}.
 */
export const FAULT_CONSUME = `
local f = redis.call('HMGET', KEYS[1], 'remaining', 'until')
if not f[1] then return {0, 'notFound'} end
if f[2] ~= '' and tonumber(f[2]) <= tonumber(ARGV[1]) then return {0, 'expired'} end
if f[1] == '' then return {1, ''} end
local left = tonumber(f[1])
if left <= 0 then return {0, 'exhausted'} end
redis.call('HSET', KEYS[1], 'remaining', left - 1)
return {1, tostring(left - 1)}
`;

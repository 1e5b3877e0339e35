/**
 * fault-list: the rules that can still apply at now, oldest first.
 * KEYS[1] the order (zset of ids), KEYS[2] the prefix of rule hashes (id appended)
 * ARGV[1] now (virtual epoch ms)
 * Returns a flat array: rule JSON, remaining ('' = unlimited), for each live rule.
 */
export const FAULT_LIST = `
local now = tonumber(ARGV[1])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', KEYS[2] .. id, 'rule', 'remaining', 'until')
  if f[1] then
    local live = (f[2] == '' or tonumber(f[2]) > 0) and (f[3] == '' or tonumber(f[3]) > now)
    if live then
      out[#out + 1] = f[1]
      out[#out + 1] = f[2]
    end
  end
end
return out
`;

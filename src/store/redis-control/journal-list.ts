/**
 * journal-list: entries newest first, filtered by call and app.
 * KEYS[1] the journal (list, newest first)
 * ARGV[1] callId ('' = any), ARGV[2] appId ('' = any), ARGV[3] limit
 * Returns up to limit entry JSONs.
 */
export const JOURNAL_LIST = `
local limit = tonumber(ARGV[3])
local out = {}
if ARGV[1] == '' and ARGV[2] == '' then return redis.call('LRANGE', KEYS[1], 0, limit - 1) end
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local e = cjson.decode(raw)
  if (ARGV[1] == '' or e.callId == ARGV[1]) and (ARGV[2] == '' or e.appId == ARGV[2]) then
    out[#out + 1] = raw
    if #out >= limit then break end
  end
end
return out
`;

--[[
  create: stores a new call and queues its `created` fact.
  KEYS[1] <shard>:meta
  ARGV[5] id  ARGV[6] appId  ARGV[7] tenantId  ARGV[8] state  ARGV[9] direction
  ARGV[10] createdAt (now)  ARGV[11] deadline  ARGV[12] establishAt or ''  ARGV[13] resource JSON
  ARGV[14] creation order (rid)  ARGV[15] callbackUri
  Returns 1 when stored, 0 when the id exists (nothing changed).
]]
local id = ARGV[5]
local k = callKey(id)
if redis.call('EXISTS', k) == 1 then return 0 end
local c = { id = id, app = ARGV[6], tenant = ARGV[7], state = ARGV[8], dir = ARGV[9], created = ARGV[10], lka = '',
  deadline = ARGV[11], establish = ARGV[12], ended = '', rc = '', rs = '', rm = '', res = ARGV[13], patch = '',
  cb = ARGV[15] }
redis.call('HSET', k, 'id', id, 'app', c.app, 'tenant', c.tenant, 'state', c.state, 'dir', c.dir, 'created', c.created,
  'lka', '', 'deadline', c.deadline, 'establish', c.establish, 'ended', '', 'rc', '', 'rs', '', 'rm', '', 'res', c.res,
  'patch', '', 'cb', c.cb, 'rid', ARGV[14])
redis.call('ZADD', key('deadlines'), c.deadline, id)
if c.establish ~= '' then redis.call('ZADD', key('establish'), c.establish, id) end
redis.call('ZADD', key('calls'), ARGV[14], id)
enqueue(id, c.app, c.tenant, c.cb, 'created', '', snapshot(c), tonumber(c.created))
return 1

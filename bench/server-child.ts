/**
 * A callkeeper server in its own process, for the benchmarks: SQLite on disk, tokens checked,
 * no request logging. Tells the parent its URL over IPC, answers {type:'stats'} with its RSS
 * and {type:'expiries'} with the lag of every call it ended for inactivity.
 *
 *   --data <dir>  --start-at <virtual epoch ms>  --tls (serve https only, with callkeeper's own
 *   local CA and certificate, as `callkeeper serve` does)  --store redis://... (the Redis store
 *   instead of SQLite in --data, as `serve --store`)  --outbox-total <n> (the outbox bound)
 */
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ScaledClock } from '../src/clock/clock.js';
import { createCallkeeper } from '../src/server.js';
import { loadOrCreateTls } from '../src/tls/certificates.js';
import type { ChildReply, ParentMessage } from './child-protocol.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    'start-at': { type: 'string' },
    tls: { type: 'boolean', default: false },
    store: { type: 'string' },
    'outbox-total': { type: 'string' },
  },
});
if (!values.data) throw new Error('--data is required');
const startAt = values['start-at'] === undefined ? undefined : Number(values['start-at']);
const clock = new ScaledClock(1, Date.now, startAt);
const tls = values.tls ? await loadOrCreateTls(join(values.data, 'tls'), Date.now()) : undefined;

// Expiry lag: an expired call is stamped endedAt = its deadline, so the lag is how much later
// than that the end was actually carried out (and observers told).
const deadlines: number[] = [];
const lags: number[] = [];
let lastEndAt = 0;

const ck = await createCallkeeper({
  dataDir: values.store ? undefined : values.data,
  storeUrl: values.store,
  ...(values['outbox-total'] ? { outboxBounds: { perCall: 100, total: Number(values['outbox-total']) } } : {}),
  logger: false,
  clock,
  tls: tls && { key: tls.key, cert: tls.cert },
});
ck.service.observe({
  onCallChanged(call, change) {
    if (change !== 'deleted' || call.endedAt === null || call.resultInfo?.code !== 408) return;
    const now = clock.now();
    deadlines.push(call.endedAt);
    lags.push(now - call.endedAt);
    lastEndAt = now;
  },
});
const url = tls ? await ck.listenTls('127.0.0.1', 0) : await ck.listen('127.0.0.1', 0);

const send = (m: ChildReply) => process.send?.(m);
const loop = monitorEventLoopDelay({ resolution: 1 });
process.on('message', (m: ParentMessage) => {
  if (m.type === 'stats') {
    const cpu = process.cpuUsage();
    send({ type: 'stats', rss: process.memoryUsage().rss, now: clock.now(), expired: lags.length, cpuUs: cpu.user + cpu.system });
  }
  if (m.type === 'expiries') send({ type: 'expiries', deadlines, lags, lastEndAt, now: clock.now() });
  // Only while asked (the latency row): a 1 ms timer would otherwise cost the throughput rows.
  if (m.type === 'loopStart') {
    loop.reset();
    loop.enable();
    send({ type: 'loopStart' });
  }
  if (m.type === 'loopStop') {
    loop.disable();
    send({ type: 'loopStop', p50Ms: loop.percentile(50) / 1e6, p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 });
  }
});
process.once('SIGTERM', () => {
  ck.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
send({ type: 'ready', url });

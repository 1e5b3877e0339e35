import { forkServer } from './children.js';
import type { BenchContext } from './context.js';
import { fixedRateLoadApart } from './fixed-rate.js';
import { fmt, type Row } from './table.js';
import { alternate, type CallkeeperServer, type Target } from './targets.js';

export const LATENCY_RATE = 5_000;

/** keepAlive throughput next to a bare node:http server, and over TLS, in one alternating run. */
export async function benchThroughput(
  ctx: BenchContext,
  ck: CallkeeperServer,
  tls: CallkeeperServer | { pending: string },
): Promise<{ rows: Row[]; bare: Target }> {
  const bareChild = await forkServer('bare-child.ts');
  const fastifyChild = await forkServer('bare-fastify-child.ts');
  const cpuOf = (child: typeof bareChild) => async () => (await child.ask('stats')).cpuUs;
  const reference = (name: string, child: typeof bareChild): Target => ({
    name,
    origin: child.url,
    pathFor: ck.target.pathFor,
    headers: ck.target.headers,
    cpuUs: cpuOf(child),
  });
  const bare = reference('bare node:http', bareChild);
  const bareFastify = reference('bare Fastify', fastifyChild);
  const targets = [bare, bareFastify, ck.target, ...('target' in tls ? [tls.target] : [])];
  ctx.log(`throughput: ${targets.map((t) => t.name).join(' / ')}, 2 rounds of ${ctx.seconds} s each`);
  const res = await alternate(ctx, targets, 2);
  const b = res.get(bare.name);
  const f = res.get(bareFastify.name);
  const c = res.get(ck.target.name);
  if (!b || !f || !c) throw new Error('throughput: missing result');
  const ratio = c.rps / b.rps;
  const us = (a: typeof b) => (a.cpuUsPerRequest === undefined ? '?' : `${a.cpuUsPerRequest.toFixed(1)} µs`);
  const rows: Row[] = [
    {
      figure: 'keepAlive throughput',
      measured:
        `${fmt.rps(c.rps)} vs bare node:http ${fmt.rps(b.rps)}: ${fmt.ratio(ratio)}` +
        ` (a bare Fastify route: ${fmt.rps(f.rps)}, ${fmt.ratio(f.rps / b.rps)});` +
        ` server CPU per request: callkeeper ${us(c)}, bare node:http ${us(b)}, bare Fastify ${us(f)}`,
      target: '>= 0.7x bare node:http',
      verdict: ratio >= 0.7 && c.failed === 0 ? 'met' : 'missed',
      ...(c.failed ? { note: `${c.failed} requests failed` } : {}),
    },
  ];
  const tlsAgg = 'target' in tls ? res.get(tls.target.name) : undefined;
  if ('target' in tls && tlsAgg) {
    rows.push({
      figure: 'https (TLS) throughput',
      measured: `${fmt.rps(tlsAgg.rps)}: ${fmt.ratio(tlsAgg.rps / c.rps)} of http`,
      target: 'reported (ratio to http)',
      verdict: tlsAgg.failed === 0 ? 'reported' : 'missed',
      ...(tlsAgg.failed ? { note: `${tlsAgg.failed} requests failed` } : {}),
    });
  } else if ('pending' in tls) {
    rows.push({
      figure: 'https (TLS) throughput',
      measured: 'not measured',
      target: 'reported (ratio to http)',
      verdict: 'pending',
      note: tls.pending,
    });
  }
  ctx.raw.throughput = Object.fromEntries(res);
  ctx.raw.bareNodeHttpRps = b.rps;
  ctx.raw.callkeeperRps = c.rps;
  ctx.raw.bareFastifyRps = f.rps;
  ctx.raw.cpuUsPerRequest = { callkeeper: c.cpuUsPerRequest, bareNodeHttp: b.cpuUsPerRequest, bareFastify: f.cpuUsPerRequest };
  await bareChild.stop();
  await fastifyChild.stop();
  return { rows, bare };
}

/** p50/p99 of keepAlive at a fixed 5,000 req/s (open loop), next to the bare server's at the same rate. */
export async function benchLatency(ctx: BenchContext, ck: CallkeeperServer): Promise<Row[]> {
  const bareChild = await forkServer('bare-child.ts');
  const seconds = Math.max(4, ctx.seconds);
  ctx.log(`latency: ${LATENCY_RATE} req/s for ${seconds} s, bare node:http then callkeeper`);
  // Each run first warms its own connections and both ends (JIT) for a second at the same rate;
  // the generator runs in a process of its own, started for the run (fixedRateLoadApart).
  const spec = { rate: LATENCY_RATE, seconds, warmupSeconds: 1, headers: ck.target.headers, pathFor: ck.target.pathFor };
  const bare = await fixedRateLoadApart({ ...spec, origin: bareChild.url });
  // The server's own event-loop delay over its run (warm-up included): how much of the tail is
  // callkeeper's loop (GC, synchronous work) rather than the sockets or the generator.
  await ck.child.ask('loopStart');
  const ckRes = await fixedRateLoadApart({ ...spec, origin: ck.target.origin });
  const serverLoop = await ck.child.ask('loopStop');
  await bareChild.stop();
  ctx.raw.latency = { callkeeper: ckRes, bareNodeHttp: bare, serverLoopDelay: serverLoop };
  ctx.log(
    `  bare p50 ${bare.p50Ms.toFixed(2)} p99 ${bare.p99Ms.toFixed(2)}; callkeeper p50 ${ckRes.p50Ms.toFixed(2)} p99 ${ckRes.p99Ms.toFixed(2)}`,
  );
  const ok = ckRes.p99Ms <= 3 && ckRes.failed === 0;
  return [
    {
      figure: `latency at ${fmt.int(LATENCY_RATE)} req/s`,
      measured:
        `p50 ${fmt.ms(ckRes.p50Ms)}, p99 ${fmt.ms(ckRes.p99Ms)} (max ${fmt.ms(ckRes.maxMs)}, ${fmt.rps(ckRes.achievedRps)} achieved);` +
        ` bare node:http p50 ${fmt.ms(bare.p50Ms)}, p99 ${fmt.ms(bare.p99Ms)}` +
        (ckRes.generatorLagMs > 5 ? `; the load generator itself fell ${fmt.ms(ckRes.generatorLagMs)} behind` : '') +
        `; event-loop delay p99 (max): callkeeper's ${fmt.ms(serverLoop.p99Ms)} (${fmt.ms(serverLoop.maxMs)}),` +
        ` the generator's ${fmt.ms(ckRes.generatorLoopDelayP99Ms)} (${fmt.ms(ckRes.generatorLoopDelayMaxMs)})`,
      target: 'p99 <= 3 ms (bare node:http about 2 ms)',
      verdict: ok ? 'met' : 'missed',
      ...(ckRes.failed ? { note: `${ckRes.failed} requests failed` } : {}),
    },
  ];
}

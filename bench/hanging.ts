import { forkServer } from './children.js';
import type { BenchContext } from './context.js';
import { fmt, type Row } from './table.js';
import { alternate, type CallkeeperServer, startCallkeeper } from './targets.js';

/**
 * Issue 4: a hanging bot must not slow the Graph API. Two callkeeper servers, alike but for
 * their calls' callbackUri: one a healthy bot, the other a bot that accepts every notification
 * and never answers (each of its 1,000 calls has notifications stuck in flight). The same
 * keepAlive load alternates between them; the ratio says what the hanging bot costs.
 */
export async function benchHangingBot(ctx: BenchContext, healthy: CallkeeperServer): Promise<Row[]> {
  const hanging = await forkServer('sink-child.ts', ['--hang']);
  const ck = await startCallkeeper(ctx, 'callkeeper, bot hanging', 1_000, [], `${hanging.url}/callbacks`);
  try {
    ctx.log('hanging bot: keepAlive load alternating between a server whose bot hangs and one whose bot answers');
    const res = await alternate(ctx, [healthy.target, ck.target], 2);
    const h = res.get(healthy.target.name);
    const x = res.get(ck.target.name);
    if (!h || !x) throw new Error('hanging bot: missing result');
    const p99 = (a: typeof h) => Math.max(...a.rounds.map((r) => r.p99Ms));
    const ratio = x.rps / h.rps;
    ctx.raw.hangingBot = { healthy: h, hanging: x };
    return [
      {
        figure: 'keepAlive while a bot hangs on its notifications',
        measured: `${fmt.rps(x.rps)} (p99 ${p99(x)} ms) vs ${fmt.rps(h.rps)} (p99 ${p99(h)} ms) with a bot that answers: ${fmt.ratio(ratio)}`,
        target: 'no slower (>= 0.9x, within noise)',
        verdict: ratio >= 0.9 && x.failed === 0 ? 'met' : 'missed',
      },
    ];
  } finally {
    await ck.child.stop();
    await hanging.stop();
  }
}

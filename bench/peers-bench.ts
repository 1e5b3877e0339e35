import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess } from './children.js';
import type { BenchContext } from './context.js';
import { keepAliveLoad } from './load.js';
import { freePort, PEERS, waitForKeepAlive } from './peers.js';
import { fmt, type Row } from './table.js';
import { alternate, type Target } from './targets.js';

/**
 * The same keepAlive load on each peer, each measured right next to callkeeper (peer, then
 * callkeeper, after warming both up). `installed` rejects when the peers could not be installed.
 */
export async function benchPeers(ctx: BenchContext, ck: Target, installed: Promise<void>): Promise<Row[]> {
  const rows: Row[] = [];
  let installError: string | undefined;
  await installed.catch((err: unknown) => {
    installError = `could not install the peers: ${String(err).split('\n')[0]}`;
  });
  const raw: Record<string, unknown> = {};
  for (const peer of PEERS) {
    const figure = `vs ${peer.name} ${peer.version}`;
    const target = 'callkeeper faster';
    if (installError) {
      rows.push({ figure, measured: 'not measured', target, verdict: 'not run', note: installError });
      continue;
    }
    const dir = mkdtempSync(join(ctx.tmp, 'peer-'));
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    ctx.log(`peer: ${peer.name} ${peer.version} on ${origin}`);
    const proc = peer.start(dir, port);
    try {
      await waitForKeepAlive(proc, origin, 60_000);
      const peerTarget: Target = { name: peer.name, origin, pathFor: ck.pathFor, headers: ck.headers };
      await keepAliveLoad({ ...peerTarget, seconds: peer.warmupSeconds });
      const res = await alternate(ctx, [peerTarget, ck], 1);
      const p = res.get(peer.name);
      const c = res.get(ck.name);
      if (!p || !c) throw new Error('missing result');
      raw[peer.name] = { peer: p, callkeeper: c };
      const ratio = c.rps / p.rps;
      rows.push({
        figure,
        measured: `${peer.name} ${fmt.rps(p.rps)}, callkeeper ${fmt.rps(c.rps)}: callkeeper ${fmt.ratio(ratio)}`,
        target,
        verdict: ratio > 1 && c.failed === 0 ? 'met' : 'missed',
        ...(p.failed ? { note: `${p.failed} of the peer's requests failed` } : {}),
      });
    } catch (err) {
      rows.push({ figure, measured: 'not measured', target, verdict: 'not run', note: `could not run it: ${String(err)}` });
    } finally {
      await stopProcess(proc);
    }
  }
  ctx.raw.peers = raw;
  return rows;
}

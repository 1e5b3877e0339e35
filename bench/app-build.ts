// CPU of building one callkeeper (createCallkeeper + ready), with and without TLS, and with
// its signing keys already in the store (what a restart or a second instance pays) or not.
// node --import tsx bench/app-build.ts [count]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { ManualClock } from '../src/clock/clock.js';
import { createCallkeeper } from '../src/server.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { loadOrCreateTls } from '../src/tls/certificates.js';

const count = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'ck-build-'));
const tls = await loadOrCreateTls(join(dir, 'tls'), Date.now(), { caKeyDir: join(dir, 'ca-keys') });
const jwk = async () =>
  JSON.stringify(await exportJWK((await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 })).privateKey));
const keys = { token: await jwk(), notification: await jwk() };

async function one(withTls: boolean, keysMade: boolean): Promise<{ cpu: number; wall: number }> {
  let store: SqliteStore | undefined;
  if (keysMade) {
    store = new SqliteStore({});
    await store.getOrInitSetting('token-signing-key', keys.token);
    await store.getOrInitSetting('notification-signing-key', keys.notification);
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const ck = await createCallkeeper({
    clock: new ManualClock(),
    logger: false,
    ...(store ? { store } : {}),
    ...(withTls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
  });
  await ck.app.ready();
  await ck.tlsApp?.ready();
  const c = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  await ck.close();
  return { cpu: (c.user + c.system) / 1000, wall };
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const kinds = [
  { tls: false, keys: true },
  { tls: true, keys: true },
  { tls: false, keys: false },
  { tls: true, keys: false },
];
// Warm-up: module loading and JIT belong to none of them.
for (let i = 0; i < 3; i++) await one(true, true);
// Round-robin, so that a change in the machine's load falls on every kind alike.
const runs = kinds.map(() => [] as { cpu: number; wall: number }[]);
for (let i = 0; i < count; i++) for (const [k, kind] of kinds.entries()) runs[k]?.push(await one(kind.tls, kind.keys));
// Method-routes in the router (HEAD included), from its printed tree.
let routes = 0;
{
  const ck = await createCallkeeper({ clock: new ManualClock(), logger: false });
  await ck.app.ready();
  for (const m of ck.app.printRoutes().matchAll(/\(([A-Z, ]+)\)/g)) routes += (m[1] ?? '').split(',').length;
  await ck.close();
}
console.log(`${routes} method-routes per app`);
for (const [k, kind] of kinds.entries()) {
  const r = runs[k] ?? [];
  const cpu = r.map((x) => x.cpu);
  console.log(
    `${kind.tls ? 'https+http' : 'http      '} ${kind.keys ? 'keys in store' : 'new keys     '}: cpu median ${med(cpu).toFixed(0)} ms (min ${Math.min(...cpu).toFixed(0)}), wall median ${med(r.map((x) => x.wall)).toFixed(0)} ms (${count} builds)`,
  );
}
rmSync(dir, { recursive: true, force: true });

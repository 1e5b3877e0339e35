/**
 * node --import tsx bench/profile-summary.ts <file.cpuprofile> [top]
 * Self time by function and by package/source file, from a V8 CPU profile (BENCH_CPU_PROF).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
// Percentages are of the time the thread was busy: on a loaded machine most samples are (idle),
// and shares of the whole profile would hide what the CPU was spent on.
const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
const wall = [...self.values()].reduce((a, b) => a + b, 0);
for (const id of idleIds) self.delete(id);
const total = [...self.values()].reduce((a, b) => a + b, 0);
process.stdout.write(`${file}: ${(wall / 1000).toFixed(0)} ms profiled, ${(total / 1000).toFixed(0)} ms busy\n`);

function where(url: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m?.[1]) return m[1];
  if (url.includes('/src/')) return `src/${url.split('/src/')[1] ?? ''}`;
  if (url.includes('/dist/')) return `dist/${url.split('/dist/')[1] ?? ''}`;
  if (url.startsWith('node:')) return url;
  return url || '(native/vm)';
}

const fn = new Map<string, number>();
const pkg = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id);
  if (!n) continue;
  const name = `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  fn.set(name, (fn.get(name) ?? 0) + us);
  const p = where(n.callFrame.url);
  pkg.set(p, (pkg.get(p) ?? 0) + us);
}
const show = (title: string, m: Map<string, number>) => {
  process.stdout.write(`\n${title} (% of ${(total / 1000).toFixed(0)} ms busy)\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
// Inclusive time of callkeeper's own functions (src/, or dist/ for the built CLI): what each step of a request costs with
// everything it calls. A function on the stack twice counts once.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const incl = new Map<string, number>();
for (const [id, us] of self) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    if (!n || !/\/(src|dist)\//.test(n.callFrame.url)) continue;
    const name = `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    if (seen.has(name)) continue;
    seen.add(name);
    incl.set(name, (incl.get(name) ?? 0) + us);
  }
}
show('self time by function', fn);
show('self time by package / file', pkg);
show('inclusive time of callkeeper functions', incl);

/**
 * The README's keeper section keeps up with the API: a heading with an example for every public method and
 * event, and every option named. The lists below are keyed by the types, so tsc fails the lint
 * when a member, event or option is added without a doc entry.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { KeepAlive } from '../src/keeper/keep-alive.js';
import type { KeepAliveEvents } from '../src/keeper/keep-alive-events.js';
import type { KeepAliveOptions } from '../src/keeper/keep-alive-options.js';
import { KEEP_EXIT, KEEP_HELP } from '../src/keeper/keep-command.js';
import { ROOT } from './paths.js';

type OwnMembers = Exclude<keyof KeepAlive, keyof EventEmitter>;

// Records keyed by the types' own keys: tsc rejects these the moment a key is missing.
const METHOD_HEADINGS: Record<OwnMembers, string> = {
  track: 'keeper.track(callId, options)',
  untrack: 'keeper.untrack(callId)',
  has: 'keeper.has(callId)',
  size: 'keeper.size',
  stats: 'keeper.stats()',
  whenIdle: 'keeper.whenIdle()',
  close: 'keeper.close()',
  calls: 'keeper.calls()',
  replicaId: 'keeper.replicaId',
};
const EVENT_HEADINGS: Record<keyof KeepAliveEvents, string> = {
  sent: 'Event: sent',
  attemptFailed: 'Event: attemptFailed',
  ended: 'Event: ended',
  atRisk: 'Event: atRisk',
  deadlineMissed: 'Event: deadlineMissed',
  hookFailed: 'Event: hookFailed',
  permanentError: 'Event: permanentError',
  circuitOpen: 'Event: circuitOpen',
  circuitClosed: 'Event: circuitClosed',
  sharedError: 'Event: sharedError',
  rebalanced: 'Event: rebalanced',
};
const OPTIONS: Record<keyof KeepAliveOptions, true> = {
  baseUrl: true,
  getToken: true,
  credential: true,
  scopes: true,
  interval: true,
  timeout: true,
  atRiskAfter: true,
  maxConcurrency: true,
  maxRate: true,
  retry: true,
  tickMs: true,
  requestTimeoutMs: true,
  clock: true,
  dispatcher: true,
  fetch: true,
  random: true,
  tenants: true,
  logger: true,
  endBreaker: true,
  replicaId: true,
  shared: true,
};

// The keeper's reference lives in the README, section "The keep-alive runtime".
const readme = readFileSync(`${ROOT}README.md`, 'utf8');
const from = readme.indexOf('## The keep-alive runtime');
const doc = readme.slice(from, readme.indexOf('\n## ', from + 1));

/** The text under a heading, up to the next heading of any level. */
function section(title: string): string | undefined {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => /^#{3,4} /.test(l) && l.replace(/^#+ /, '') === title);
  if (start < 0) return undefined;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => /^#{1,4} /.test(l));
  return (end < 0 ? rest : rest.slice(0, end)).join('\n');
}

test('README keeper section: a heading with an example for each method and event', () => {
  const titles = [
    'new KeepAlive(options)',
    'clientCredentials(options)',
    'keeperMetrics(keeper, options)',
    'Shared keeping on Redis: shared',
    ...Object.values(METHOD_HEADINGS),
    ...Object.values(EVENT_HEADINGS),
  ];
  for (const title of titles) {
    const body = section(title);
    assert.ok(body !== undefined, `a heading "${title}"`);
    assert.match(body, /```(ts|sh)\n[\s\S]+?```/, `an example under "${title}"`);
  }
});

test('README keeper section: every option is in the options table', () => {
  const table = section('new KeepAlive(options)') ?? '';
  for (const o of Object.keys(OPTIONS)) assert.ok(table.includes(`\`${o}\``), `option ${o} is documented`);
});

test('README keeper section: every flag and exit code of callkeeper keep --help is in "The command line: callkeeper keep"', () => {
  const keep = doc.slice(doc.indexOf('### The command line: callkeeper keep'));
  const flags = [...KEEP_HELP.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1] as string);
  assert.ok(flags.includes('--redis') && flags.includes('--lease-ttl') && flags.length >= 15, flags.join(' '));
  for (const f of flags) if (f !== '--help') assert.ok(keep.includes(`\`${f}`), `${f} is documented in the README`);
  for (const code of Object.values(KEEP_EXIT))
    assert.match(keep, new RegExp(`\\n\\| ${code} \\| `), `exit code ${code} in the README table`);
});

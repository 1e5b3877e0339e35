import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO } from './children.js';
import type { BenchContext } from './context.js';
import type { Row, Verdict } from './table.js';

const FIGURE = 'keeper: 100,000 tracked calls at the 15-minute cadence';
const TARGET = '<= 2% of a core, <= 150 MB, max/mean per-second sends <= 2';
const SCRIPT = join(REPO, 'bench', 'keeper.ts');
const RESULT = join(REPO, 'bench', 'results', 'keeper.json');
const TIMEOUT_MS = 300_000;

const VERDICTS: readonly string[] = ['met', 'missed', 'reported', 'pending', 'not run'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads bench/results/keeper.json. It may hold a ready row ({figure?, measured, target?,
 * verdict | ok, note?}, at the top or under "row"); otherwise its numbers are listed as they are.
 */
export function keeperRowFrom(json: unknown): Row {
  const src = isRecord(json) && isRecord(json.row) ? json.row : json;
  if (!isRecord(src)) return { figure: FIGURE, measured: 'unreadable keeper.json', target: TARGET, verdict: 'missed' };
  const verdict: Verdict =
    typeof src.verdict === 'string' && VERDICTS.includes(src.verdict)
      ? (src.verdict as Verdict)
      : typeof src.ok === 'boolean'
        ? src.ok
          ? 'met'
          : 'missed'
        : 'reported';
  const measured =
    typeof src.measured === 'string'
      ? src.measured
      : Object.entries(src)
          .filter(([, v]) => typeof v === 'number' || typeof v === 'boolean')
          .map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`)
          .join(', ');
  return {
    figure: typeof src.figure === 'string' ? src.figure : FIGURE,
    measured: measured || 'keeper.json has no figures',
    target: typeof src.target === 'string' ? src.target : TARGET,
    verdict,
    ...(typeof src.note === 'string' ? { note: src.note } : {}),
  };
}

/** Runs bench/keeper.ts (written alongside the keeper) if it exists and reads its result. */
export function benchKeeper(ctx: BenchContext): Promise<Row[]> {
  return runKeeperScript(ctx, SCRIPT, RESULT, 'keeper');
}

/** Runs bench/keeper-shared.ts (3 replicas on one Redis) and reads its row. */
export function benchKeeperShared(ctx: BenchContext): Promise<Row[]> {
  return runKeeperScript(
    ctx,
    join(REPO, 'bench', 'keeper-shared.ts'),
    join(REPO, 'bench', 'results', 'keeper-shared.json'),
    'keeperShared',
  );
}

async function runKeeperScript(ctx: BenchContext, SCRIPT: string, RESULT: string, rawKey: string): Promise<Row[]> {
  if (!existsSync(SCRIPT)) {
    return [{ figure: FIGURE, measured: 'not measured', target: TARGET, verdict: 'pending', note: 'bench/keeper.ts is not written yet' }];
  }
  ctx.log(`keeper: node --import tsx ${relative(REPO, SCRIPT)}`);
  rmSync(RESULT, { force: true });
  const code = await new Promise<number | string>((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', SCRIPT], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => proc.kill('SIGKILL'), TIMEOUT_MS);
    proc.once('exit', (c, signal) => {
      clearTimeout(timer);
      resolve(c ?? signal ?? 'unknown');
    });
  });
  if (!existsSync(RESULT)) {
    return [
      {
        figure: FIGURE,
        measured: 'not measured',
        target: TARGET,
        verdict: 'not run',
        note: `bench/keeper.ts ended (${code}) without writing bench/results/keeper.json`,
      },
    ];
  }
  const json: unknown = JSON.parse(readFileSync(RESULT, 'utf8'));
  ctx.raw[rawKey] = json;
  return [keeperRowFrom(json)];
}

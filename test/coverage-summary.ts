/**
 * `npm run coverage` ends here: reads the lcov file node's test runner wrote and prints the
 * line, branch and function coverage of src/ (the test files themselves are left out), the
 * totals first, then the 15 files with the most uncovered lines.
 *
 *   node --import tsx test/coverage-summary.ts coverage/lcov.info
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface FileCoverage {
  file: string;
  lines: [hit: number, found: number];
  branches: [hit: number, found: number];
  functions: [hit: number, found: number];
}

function parse(lcov: string): FileCoverage[] {
  const out: FileCoverage[] = [];
  let cur: FileCoverage | undefined;
  for (const line of lcov.split('\n')) {
    const [tag, value = ''] = line.split(/:(.*)/s, 2) as [string, string?];
    const n = Number(value);
    if (tag === 'SF') {
      cur = { file: relative(process.cwd(), value), lines: [0, 0], branches: [0, 0], functions: [0, 0] };
      out.push(cur);
    } else if (cur) {
      if (tag === 'LH') cur.lines[0] = n;
      else if (tag === 'LF') cur.lines[1] = n;
      else if (tag === 'BRH') cur.branches[0] = n;
      else if (tag === 'BRF') cur.branches[1] = n;
      else if (tag === 'FNH') cur.functions[0] = n;
      else if (tag === 'FNF') cur.functions[1] = n;
    }
  }
  return out;
}

const pct = ([hit, found]: [number, number]) => (found === 0 ? '100.00' : ((100 * hit) / found).toFixed(2));
const sum = (xs: FileCoverage[], k: 'lines' | 'branches' | 'functions'): [number, number] =>
  xs.reduce<[number, number]>((a, x) => [a[0] + x[k][0], a[1] + x[k][1]], [0, 0]);

const path = process.argv[2] ?? 'coverage/lcov.info';
const files = parse(readFileSync(path, 'utf8')).filter((f) => f.file.startsWith('src/'));
if (files.length === 0) throw new Error(`${path} covers no file under src/`);
const lines = sum(files, 'lines');
process.stdout.write(
  `\ncoverage of src/ (${files.length} files): lines ${pct(lines)}% (${lines[0]}/${lines[1]}), ` +
    `branches ${pct(sum(files, 'branches'))}%, functions ${pct(sum(files, 'functions'))}%\n`,
);
const worst = [...files].sort((a, b) => b.lines[1] - b.lines[0] - (a.lines[1] - a.lines[0])).slice(0, 15);
process.stdout.write('most uncovered lines:\n');
for (const f of worst)
  process.stdout.write(`  ${f.file}: ${pct(f.lines)}% of ${f.lines[1]} lines (${f.lines[1] - f.lines[0]} uncovered)\n`);

/**
 * met: target reached; missed: not reached; reported: no target; pending: cannot be measured
 * yet (the feature is not built); not run: the benchmark could not run here (see the note).
 */
export type Verdict = 'met' | 'missed' | 'reported' | 'pending' | 'not run';

export interface Row {
  figure: string;
  measured: string;
  target: string;
  verdict: Verdict;
  /** Why a target is missed or pending, or how to read the figure. */
  note?: string;
}

const MARK: Record<Verdict, string> = { met: 'met', missed: '**MISSED**', reported: 'reported', pending: 'pending', 'not run': 'not run' };

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(rows: readonly Row[]): string {
  const lines = ['| figure | measured | target | result |', '|---|---|---|---|'];
  for (const r of rows) {
    const verdict = r.note ? `${MARK[r.verdict]}: ${r.note}` : MARK[r.verdict];
    lines.push(`| ${cell(r.figure)} | ${cell(r.measured)} | ${cell(r.target)} | ${cell(verdict)} |`);
  }
  return lines.join('\n');
}

export const fmt = {
  rps: (n: number) => `${Math.round(n).toLocaleString('en-US')} req/s`,
  ratio: (n: number) => `${n.toFixed(2)}x`,
  ms: (n: number) => (n < 10 ? `${n.toFixed(2)} ms` : `${Math.round(n)} ms`),
  s: (n: number) => `${n.toFixed(2)} s`,
  mb: (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 2 : 0)} MB`,
  int: (n: number) => n.toLocaleString('en-US'),
};

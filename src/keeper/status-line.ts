import type { KeepAliveStats } from './keep-alive.js';

/** "2h 03m", "14m 05s", "42s": short enough for a status line, precise enough for a person. */
export function formatSpan(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** One line that says how the keeper is doing, with times relative to `now`. */
export function formatStatus(s: KeepAliveStats, now: number): string {
  const parts = [
    `tracked ${s.tracked}`,
    `sent ${s.sent}`,
    `last success ${s.lastSuccessAt === undefined ? 'none yet' : `${formatSpan(now - s.lastSuccessAt)} ago`}`,
    `next send ${s.nextSendAt === undefined ? '-' : s.nextSendAt <= now ? 'now' : `in ${formatSpan(s.nextSendAt - now)}`}`,
    `failures ${s.failures}${s.failing > 0 ? ` (${s.failing} call${s.failing === 1 ? '' : 's'} failing)` : ''}`,
    `ended ${s.ended}`,
  ];
  if (s.throttledUntil !== undefined) parts.push(`throttled for ${formatSpan(s.throttledUntil - now)}`);
  return parts.join(' | ');
}

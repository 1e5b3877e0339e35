import ms from 'ms';

/** "45m", "2h", "1500ms", "90s"; a bare number is milliseconds. Throws on anything else. */
export function parseDuration(text: string, flag: string): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : ms(text.trim() as ms.StringValue);
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${flag}: '${text}' is not a duration (examples: 45m, 90s, 1500ms)`);
  }
  return value;
}

import { isIP } from 'node:net';
import ms from 'ms';

/**
 * What a kind of option value is: how it is read from a flag or an environment variable
 * (text), from the config file (JSON), and how it is described (JSON schema, range text).
 * Every parse error is a plain message; the caller prefixes the flag and where it came from.
 */
export interface OptionKind<T> {
  /** Placeholder in --help: `<port>`; empty for a boolean. */
  readonly arg: string;
  parseText(text: string): T;
  parseJson(value: unknown): T;
  /** The JSON schema of the value in the config file. */
  readonly schema: Record<string, unknown>;
  /** The documented range or choices, e.g. `0-65535`, `1s-30d`; empty when any value goes. */
  readonly range: string;
}

export class OptionValueError extends Error {}

const fail = (message: string): never => {
  throw new OptionValueError(message);
};

function jsonText(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return fail(`expected ${what}, got ${JSON.stringify(value)}`);
}

export function stringKind(arg: string, opts: { nonEmpty?: boolean } = {}): OptionKind<string> {
  const check = (text: string) => (opts.nonEmpty && text.trim() === '' ? fail('must not be empty') : text);
  return {
    arg,
    parseText: check,
    parseJson: (v) => (typeof v === 'string' ? check(v) : fail(`expected a string, got ${JSON.stringify(v)}`)),
    schema: { type: 'string', ...(opts.nonEmpty ? { minLength: 1 } : {}) },
    range: '',
  };
}

export function enumKind<const V extends string>(values: readonly V[], arg = `<${values.join('|')}>`): OptionKind<V> {
  const check = (text: string): V =>
    (values as readonly string[]).includes(text) ? (text as V) : fail(`'${text}' is not one of ${values.join(', ')}`);
  return {
    arg,
    parseText: check,
    parseJson: (v) => (typeof v === 'string' ? check(v) : fail(`expected one of ${values.join(', ')}, got ${JSON.stringify(v)}`)),
    schema: { type: 'string', enum: [...values] },
    range: values.join(', '),
  };
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

export const booleanKind: OptionKind<boolean> = {
  arg: '',
  parseText: (text) => {
    const t = text.trim().toLowerCase();
    if (TRUE.has(t)) return true;
    if (FALSE.has(t)) return false;
    return fail(`'${text}' is not a boolean (true, false, 1, 0, yes, no)`);
  },
  parseJson: (v) => (typeof v === 'boolean' ? v : fail(`expected true or false, got ${JSON.stringify(v)}`)),
  schema: { type: 'boolean' },
  range: '',
};

/** Whole numbers written as digits only: `1e12`, `0x10`, `1.5` are refused, not reinterpreted. */
export function integerKind(arg: string, min: number, max: number, unit = ''): OptionKind<number> {
  const check = (text: string): number => {
    const t = text.trim();
    if (!/^-?\d+$/.test(t)) return fail(`'${text}' is not a whole number${unit ? ` of ${unit}` : ''}`);
    const n = Number(t);
    if (n < min || n > max) return fail(`'${text}' is out of range: ${min} to ${max}${unit ? ` ${unit}` : ''}`);
    return n;
  };
  return {
    arg,
    parseText: check,
    parseJson: (v) => check(jsonText(v, 'a whole number')),
    schema: { type: 'integer', minimum: min, maximum: max },
    range: `${min}-${max}`,
  };
}

export const portKind = integerKind('<port>', 0, 65535);

/** A decimal number (time scale): plain decimal notation only. */
export function numberKind(arg: string, min: number, max: number): OptionKind<number> {
  const check = (text: string): number => {
    const t = text.trim();
    if (!/^\d+(\.\d+)?$|^\.\d+$/.test(t)) return fail(`'${text}' is not a positive decimal number`);
    const n = Number(t);
    if (n < min || n > max) return fail(`'${text}' is out of range: ${min} to ${max}`);
    return n;
  };
  return {
    arg,
    parseText: check,
    parseJson: (v) => check(jsonText(v, 'a number')),
    schema: { type: 'number', minimum: min, maximum: max },
    range: `${min}-${max}`,
  };
}

const DURATION = /^(\d+(\.\d+)?)\s*(ms|s|m|h|d)?$/;

/** Milliseconds of a duration text (`45m`, `1500ms`, `2h`; a bare number is milliseconds), or undefined. */
export function durationMs(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  const value = ms(`${m[1]}${m[3] ?? 'ms'}` as ms.StringValue);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * A duration in milliseconds, bounded by `min` and `max` (texts like `1s`, `30d`). Units:
 * ms, s, m, h, d; years and weeks are refused on purpose (nothing here lasts that long).
 */
export function durationKind(min: string, max: string): OptionKind<number> {
  const lo = durationMs(min);
  const hi = durationMs(max);
  if (lo === undefined || hi === undefined) throw new Error(`bad duration range ${min}-${max}`);
  const check = (text: string): number => {
    const v = durationMs(text);
    if (v === undefined) return fail(`'${text}' is not a duration (examples: 45m, 90s, 1500ms; units ms, s, m, h, d)`);
    if (v < lo || v > hi) return fail(`'${text}' is out of range: ${min} to ${max}`);
    return v;
  };
  return {
    arg: '<duration>',
    parseText: check,
    parseJson: (v) => check(jsonText(v, 'a duration such as "45m" or a number of milliseconds')),
    schema: {
      oneOf: [
        { type: 'string', pattern: DURATION.source },
        { type: 'integer', minimum: lo, maximum: hi },
      ],
    },
    range: `${min}-${max}`,
  };
}

/** A size in bytes; suffixes kb and mb (1024-based) are accepted. */
export function sizeKind(min: number, max: number): OptionKind<number> {
  const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, mb: 1024 * 1024 };
  const show = (n: number) => (n % (1024 * 1024) === 0 ? `${n / 1024 / 1024}mb` : n % 1024 === 0 ? `${n / 1024}kb` : `${n}`);
  const check = (text: string): number => {
    const m = /^(\d+)\s*(b|kb|mb)?$/i.exec(text.trim());
    if (!m) return fail(`'${text}' is not a size in bytes (examples: 1048576, 512kb, 4mb)`);
    const n = Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? 1);
    if (n < min || n > max) return fail(`'${text}' is out of range: ${show(min)} to ${show(max)}`);
    return n;
  };
  return {
    arg: '<bytes>',
    parseText: check,
    parseJson: (v) => check(jsonText(v, 'a size in bytes')),
    schema: {
      oneOf: [
        { type: 'integer', minimum: min, maximum: max },
        { type: 'string', pattern: '^\\d+\\s*([bB]|[kK][bB]|[mM][bB])?$' },
      ],
    },
    range: `${show(min)}-${show(max)}`,
  };
}

/** A repeatable option: each flag adds one value; in the environment, comma-separated. */
export function listKind(item: OptionKind<string>): OptionKind<string[]> {
  return {
    arg: item.arg,
    parseText: (text) =>
      text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => item.parseText(s)),
    parseJson: (v) => (Array.isArray(v) ? v.map((x) => item.parseJson(x)) : fail(`expected an array of strings, got ${JSON.stringify(v)}`)),
    schema: { type: 'array', items: item.schema },
    range: item.range,
  };
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$/i;

/** A DNS name or an IP address (a certificate's subject alternative name). */
export const hostNameKind: OptionKind<string> = {
  arg: '<name>',
  parseText: (text) => {
    const t = text.trim();
    return isIP(t) || HOST_NAME.test(t) ? t : fail(`'${text}' is neither a DNS name nor an IP address`);
  },
  parseJson: (v) =>
    typeof v === 'string' ? hostNameKind.parseText(v) : fail(`expected a DNS name or IP address, got ${JSON.stringify(v)}`),
  schema: { type: 'string', minLength: 1 },
  range: '',
};

import type { OptionKind } from './option-kinds.js';

/**
 * One option of `callkeeper serve`, defined once: the flag, the CALLKEEPER_* environment
 * variable, the config-file key, --help, the README table and the JSON schema all come from it.
 */
export interface OptionDef<T, D extends T | undefined = T> {
  kind: OptionKind<T>;
  /** The value when no flag, variable or file sets it. */
  default: D;
  /** How the default is shown when the value alone would not say it (`./.callkeeper`, `<data>/tls`). */
  defaultText?: string;
  /** One line, lower case, no final period. */
  help: string;
  /** Repeatable flag: each use adds a value (the kind is a list). */
  repeatable?: boolean;
  /** Not a config-file key (the path of the config file itself). */
  notInFile?: boolean;
}

/** Identity, to infer T and D per entry. */
export function option<T, D extends T | undefined = T>(def: OptionDef<T, D>): OptionDef<T, D> {
  return def;
}

// biome-ignore lint/suspicious/noExplicitAny: the table mixes value types; each entry keeps its own.
export type AnyOptionDef = OptionDef<any, any>;

export type OptionValues<Table extends Record<string, AnyOptionDef>> = {
  [K in keyof Table]: Table[K] extends OptionDef<infer T, infer D> ? T | D : never;
};

/** `keepaliveTimeout` -> `keepalive-timeout` */
export const flagName = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
/** `keepaliveTimeout` -> `CALLKEEPER_KEEPALIVE_TIMEOUT` */
export const envName = (key: string): string => `CALLKEEPER_${flagName(key).replace(/-/g, '_').toUpperCase()}`;

export function defaultText(def: AnyOptionDef): string {
  if (def.defaultText !== undefined) return def.defaultText;
  const d: unknown = def.default;
  if (d === undefined) return '';
  if (typeof d === 'boolean') return d ? 'on' : 'off';
  if (Array.isArray(d)) return d.length ? d.join(', ') : '';
  return String(d);
}

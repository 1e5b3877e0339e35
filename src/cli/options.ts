import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type AnyOptionDef, envName, flagName, type OptionValues } from './option-def.js';
import { OptionValueError } from './option-kinds.js';
import { nearest } from './suggest.js';

/** An error meant for the user as is: it names the flag (or variable, or key) to change. */
export class CliError extends Error {}

export type OptionSource = 'flag' | 'env' | 'file' | 'default';

export interface ResolvedOptions<Table extends Record<string, AnyOptionDef>> {
  values: OptionValues<Table>;
  /** Where each value came from (flags > environment > config file > default). */
  sources: { [K in keyof Table]: OptionSource };
  help: boolean;
  /** The config file's path and its keys that are not options (e.g. "apps"), for the caller. */
  file: { path: string; extra: Record<string, unknown> } | undefined;
}

export interface ResolveSettings {
  /** The option holding the config file path. */
  configKey?: string;
  /** Config-file keys that are not options, handled by the caller. */
  extraFileKeys?: readonly string[];
  /** Command name for messages: `callkeeper serve`. */
  command: string;
}

type Found = { value: unknown; source: OptionSource };

function entries(table: Record<string, AnyOptionDef>): [string, AnyOptionDef][] {
  return Object.entries(table);
}

const isPathOption = (def: AnyOptionDef) => def.kind.arg === '<file>' || def.kind.arg === '<dir>';

/** Reads argv: `--name value`, `--name=value`, `--flag`, `--no-flag`, `-h`/`--help`. */
export function parseFlags(
  table: Record<string, AnyOptionDef>,
  argv: readonly string[],
  command: string,
): { found: Map<string, unknown>; help: boolean } {
  const byFlag = new Map(entries(table).map(([key, def]) => [flagName(key), [key, def] as const]));
  const found = new Map<string, unknown>();
  let help = false;
  const unknown = (name: string): never => {
    const names = [...byFlag.keys()].flatMap((f) => (table[byFlag.get(f)?.[0] ?? '']?.kind.arg === '' ? [f, `no-${f}`] : [f]));
    const guess = nearest(name, [...names, 'help']);
    throw new CliError(`unknown option '--${name}'${guess ? ` (did you mean --${guess}?)` : ''}; see ${command} --help for the list`);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      throw new CliError(
        arg.startsWith('-')
          ? `unknown option '${arg}'; options are spelled --name (see ${command} --help)`
          : `unexpected argument '${arg}': ${command} takes only options (see ${command} --help)`,
      );
    }
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    let entry = byFlag.get(name);
    let negated = false;
    if (!entry && name.startsWith('no-') && byFlag.get(name.slice(3))?.[1].kind.arg === '') {
      negated = true;
      name = name.slice(3);
      entry = byFlag.get(name);
    }
    if (!entry) unknown(name);
    const [key, def] = entry as readonly [string, AnyOptionDef];
    const flag = `--${negated ? 'no-' : ''}${name}`;
    try {
      if (def.kind.arg === '') {
        if (negated && inline !== undefined) throw new OptionValueError('takes no value');
        const v = inline === undefined ? true : def.kind.parseText(inline);
        found.set(key, negated ? !v : v);
        continue;
      }
      let text = inline;
      if (text === undefined) {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith('--')) throw new OptionValueError(`needs a value ${def.kind.arg}`);
        text = next;
        i++;
      }
      const v: unknown = def.kind.parseText(text);
      if (def.repeatable) found.set(key, [...((found.get(key) as unknown[] | undefined) ?? []), ...(v as unknown[])]);
      else found.set(key, v);
    } catch (err) {
      throw new CliError(`${flag}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { found, help };
}

/** Reads CALLKEEPER_* variables (empty ones count as unset). */
export function readEnv(table: Record<string, AnyOptionDef>, env: Record<string, string | undefined>): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const [key, def] of entries(table)) {
    const name = envName(key);
    const text = env[name];
    if (text === undefined || text === '') continue;
    try {
      found.set(key, def.kind.parseText(text));
    } catch (err) {
      throw new CliError(`${name}=${JSON.stringify(text)} (flag --${flagName(key)}): ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return found;
}

/**
 * Reads the JSON config file: option keys, `$schema`, and `extraKeys`; anything else is refused
 * (a typo would otherwise be silently ignored). Relative paths are relative to the file.
 */
export function readConfigFile(
  table: Record<string, AnyOptionDef>,
  path: string,
  extraKeys: readonly string[],
): { found: Map<string, unknown>; extra: Record<string, unknown> } {
  const where = `--config ${path}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CliError(`${where}: expected a JSON object`);
  const keys = entries(table)
    .filter(([, def]) => !def.notInFile)
    .map(([key]) => key);
  const found = new Map<string, unknown>();
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (k === '$schema') continue;
    if (extraKeys.includes(k)) {
      extra[k] = v;
      continue;
    }
    const def = keys.includes(k) ? table[k] : undefined;
    if (!def) {
      const guess = nearest(k, [...keys, ...extraKeys]);
      throw new CliError(
        `${where}: unknown key "${k}"${guess ? ` (did you mean "${guess}"?)` : ''}; the keys are in callkeeper.schema.json`,
      );
    }
    try {
      let value: unknown = def.kind.parseJson(v);
      if (isPathOption(def) && typeof value === 'string') value = resolve(dirname(resolve(path)), value);
      found.set(k, value);
    } catch (err) {
      throw new CliError(`${where}: "${k}" (flag --${flagName(k)}): ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { found, extra };
}

/** Flags > environment > config file > defaults. */
export function resolveOptions<Table extends Record<string, AnyOptionDef>>(
  table: Table,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  settings: ResolveSettings,
): ResolvedOptions<Table> {
  const flags = parseFlags(table, argv, settings.command);
  const fromEnv = readEnv(table, env);
  const configKey = settings.configKey;
  const configPath = configKey ? ((flags.found.get(configKey) ?? fromEnv.get(configKey)) as string | undefined) : undefined;
  const file = configPath ? readConfigFile(table, configPath, settings.extraFileKeys ?? []) : undefined;
  const values: Record<string, unknown> = {};
  const sources: Record<string, OptionSource> = {};
  for (const [key, def] of entries(table)) {
    const found: Found | undefined = flags.found.has(key)
      ? { value: flags.found.get(key), source: 'flag' }
      : fromEnv.has(key)
        ? { value: fromEnv.get(key), source: 'env' }
        : file?.found.has(key)
          ? { value: file.found.get(key), source: 'file' }
          : undefined;
    values[key] = found ? found.value : def.default;
    sources[key] = found ? found.source : 'default';
  }
  return {
    values: values as OptionValues<Table>,
    sources: sources as { [K in keyof Table]: OptionSource },
    help: flags.help,
    file: configPath && file ? { path: configPath, extra: file.extra } : undefined,
  };
}

/** How to name an option in an error, by where its value came from. */
export function optionLabel(key: string, source: OptionSource, configPath?: string): string {
  const flag = `--${flagName(key)}`;
  if (source === 'env') return `${envName(key)} (flag ${flag})`;
  if (source === 'file') return `--config ${configPath}: "${key}" (flag ${flag})`;
  return flag;
}

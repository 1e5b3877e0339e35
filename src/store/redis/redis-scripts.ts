import { readFileSync } from 'node:fs';

/** Every operation's script: lua/<name>.lua, each with a header naming its KEYS, ARGV and returns. */
export const SCRIPT_NAMES = [
  'create',
  'keepalive',
  'end',
  'answer',
  'expire',
  'establish',
  'claim',
  'finish',
  'purge',
  'add-app',
  'clock-init',
  'clock-advance',
  'bot-commit',
] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

/**
 * Scripts that run without the prelude: each spells out the little of lib.lua it needs. Redis
 * runs the prelude's definitions on every call, about 3 µs: worth saving on keepAlive alone.
 */
const STANDALONE: ReadonlySet<ScriptName> = new Set(['keepalive']);

/**
 * The scripts' text: lib.lua (the shared prelude, except for STANDALONE ones) and the operation. They are read next to this
 * module (`lua/`): the build copies them into dist/ (scripts/copy-lua.mjs), and the package ships dist/.
 */
export function loadScripts(): Record<ScriptName, string> {
  const read = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
  const lib = read('lib');
  return Object.fromEntries(SCRIPT_NAMES.map((n) => [n, STANDALONE.has(n) ? read(n) : `${lib}\n${read(n)}`])) as Record<ScriptName, string>;
}

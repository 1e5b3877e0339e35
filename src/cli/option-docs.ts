import { type AnyOptionDef, defaultText, envName, flagName } from './option-def.js';

const flagWithArg = (key: string, def: AnyOptionDef) =>
  def.kind.arg === '' ? (def.default === true ? `--no-${flagName(key)}` : `--${flagName(key)}`) : `--${flagName(key)} ${def.kind.arg}`;

function details(key: string, def: AnyOptionDef): string {
  const parts: string[] = [];
  const d = defaultText(def);
  if (d) parts.push(`default ${d}`);
  if (def.kind.range) parts.push(def.kind.schema.enum ? `one of ${def.kind.range}` : `range ${def.kind.range}`);
  parts.push(envName(key));
  if (!def.notInFile) parts.push(`"${key}"`);
  return parts.filter((p) => p !== '').join('; ');
}

/** The options part of --help. */
export function renderHelpOptions(table: Record<string, AnyOptionDef>): string {
  const rows = Object.entries(table).map(([key, def]) => ({ left: flagWithArg(key, def), help: def.help, details: details(key, def) }));
  const width = 32;
  const pad = ' '.repeat(width + 2);
  return rows
    .map((r) => {
      const left = r.left.length < width ? `  ${r.left.padEnd(width)}` : `  ${r.left}\n${pad}`;
      return `${left}${r.help}\n${pad}${r.details}\n`;
    })
    .join('');
}

const code = (s: string) => (s === '' ? '' : `\`${s.replace(/\|/g, '\\|')}\``);

/** README's table of serve options. */
export function renderMarkdownTable(table: Record<string, AnyOptionDef>): string {
  const lines = ['| flag | environment | config key | default | range | meaning |', '|---|---|---|---|---|---|'];
  for (const [key, def] of Object.entries(table)) {
    lines.push(
      `| ${code(flagWithArg(key, def))} | ${code(envName(key))} | ${def.notInFile ? '' : code(key)} | ${code(defaultText(def))} | ${code(def.kind.range)} | ${def.help.replace(/\|/g, '\\|')} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The config file's JSON schema (callkeeper.schema.json). */
export function renderJsonSchema(table: Record<string, AnyOptionDef>, extra: Record<string, unknown>): Record<string, unknown> {
  const properties: Record<string, unknown> = { $schema: { type: 'string', description: 'this schema, for editors' } };
  for (const [key, def] of Object.entries(table)) {
    if (def.notInFile) continue;
    const d = defaultText(def);
    properties[key] = {
      ...def.kind.schema,
      description: `${def.help} (flag --${flagName(key)}, env ${envName(key)}${d ? `, default ${d}` : ''})`,
    };
  }
  Object.assign(properties, extra);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'callkeeper serve --config file',
    description: 'Options of callkeeper serve; flags and CALLKEEPER_* environment variables override them.',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}

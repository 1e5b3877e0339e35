#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { nearest } from './suggest.js';

// Each command's module is imported when that command runs: `callkeeper keep` does not load the
// server, `--version` loads neither.
const serveModule = () => import('./serve.js');
const keepModule = () => import('../keeper/keep-command.js');

const HELP = `Usage: callkeeper <command> [options]

Commands:
  serve     run the Graph calls API emulator (callkeeper serve --help)
  keep      keep calls alive against Graph or callkeeper, with a live status line (callkeeper keep --help)

Options:
  -h, --help      show this help
  -v, --version   print the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return (await serveModule()).serve(rest);
    case 'keep':
      // keep has exit codes of its own (callkeeper keep --help).
      process.exitCode = await (await keepModule()).keepCommand(rest);
      return;
    case '-v':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(
        rest[0] === 'serve' ? (await serveModule()).SERVE_HELP : rest[0] === 'keep' ? (await keepModule()).KEEP_HELP : HELP,
      );
      return;
    default: {
      const guess = nearest(command, ['serve', 'keep', 'help']);
      throw new Error(`unknown command '${command}'${guess ? ` (did you mean '${guess}'?)` : ''}\n\n${HELP}`);
    }
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`callkeeper: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startTlsServer } from './helpers.js';
import { ROOT } from './paths.js';

const run = promisify(execFile);
// Inside the repo so the snippets' imports resolve from its node_modules, as in a user's project.
const SNIPPETS = join(ROOT, 'node_modules', '.cache', 'callkeeper-readme-snippets');

interface Snippet {
  heading: string;
  code: string;
}

/** The ```js blocks of the README section "Point your bot at callkeeper", with their headings. */
function readmeSnippets(): Snippet[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Point your bot at callkeeper');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const out: Snippet[] = [];
  let heading = '';
  const lines = section.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('### ')) heading = line.slice(4);
    if (line.trim() === '```js') {
      const body: string[] = [];
      for (i++; i < lines.length && lines[i]?.trim() !== '```'; i++) body.push(lines[i] ?? '');
      out.push({ heading, code: body.join('\n') });
    }
  }
  return out;
}

describe('README "Point your bot at callkeeper": every JavaScript snippet runs as written', () => {
  let s: Awaited<ReturnType<typeof startTlsServer>>;
  let https: string;
  let caPath: string;
  before(async () => {
    s = await startTlsServer();
    ({ https, caPath } = s);
    mkdirSync(SNIPPETS, { recursive: true });
  });
  after(async () => {
    await s.close();
    rmSync(SNIPPETS, { recursive: true, force: true });
  });

  const snippets = readmeSnippets();
  test('the section has a snippet for @azure/identity, the Graph client and Kiota', () => {
    const headings = snippets.map((x) => x.heading).join(' | ');
    for (const name of ['@azure/identity', 'microsoft-graph-client', 'Kiota']) assert.ok(headings.includes(name), headings);
  });

  for (const [i, snippet] of snippets.entries()) {
    test(`snippet "${snippet.heading}" runs and its effect is visible in callkeeper`, async () => {
      const file = join(SNIPPETS, `snippet-${i}.mjs`);
      writeFileSync(file, snippet.code);
      let stdout: string;
      try {
        ({ stdout } = await run(process.execPath, [file], {
          env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath, CALLKEEPER_URL: https },
          timeout: 60_000,
        }));
      } catch (err) {
        const e = err as { stderr?: string };
        throw new Error(`snippet failed:\n${e.stderr ?? String(err)}`);
      }
      const printed = stdout.trim().split('\n').pop() ?? '';
      if (/^[0-9a-f-]{36}$/.test(printed)) {
        const call = await s.ck.store.get(printed);
        assert.ok(call, 'the snippet created this call');
        assert.ok(call.lastKeepAliveAt, 'and kept it alive');
      } else {
        const principal = await s.ck.verifier.verify(`Bearer ${printed}`);
        assert.equal(principal.appId, 'ca11ca11-0000-4000-8000-00000000b075');
      }
    });
  }
});

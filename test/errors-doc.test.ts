import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { aadErrors } from '../src/auth/aad-errors.js';
import { graphErrors } from '../src/errors/graph-errors.js';
import { ROOT } from './paths.js';

const DOC = `${ROOT}docs/errors.md`;
const BEGIN = '<!-- generated from src/errors/graph-errors.ts and src/auth/aad-errors.ts: do not edit by hand -->';
const END = '<!-- end of generated tables -->';

const cell = (s: string | number) => String(s).replaceAll('|', '\\|');

function renderTables(): string {
  const graph = Object.entries(graphErrors).map(
    ([name, e]) => `| \`${name}\` | ${e.status} | \`${cell(e.code)}\` | ${cell(e.message)} | ${cell(e.when)} |`,
  );
  const aad = Object.entries(aadErrors).map(
    ([name, e]) => `| \`${name}\` | ${e.status} | \`${e.error}\` | ${e.aadsts} | ${cell(e.message)} | ${cell(e.when)} |`,
  );
  return [
    BEGIN,
    '',
    '### Graph API errors',
    '',
    '| factory | status | code | message | when |',
    '|---|---|---|---|---|',
    ...graph,
    '',
    '### Login authority (token endpoint) errors',
    '',
    '| factory | status | error | AADSTS | message | when |',
    '|---|---|---|---|---|---|',
    ...aad,
    '',
    END,
  ].join('\n');
}

test('docs/errors.md lists exactly the errors the factories produce', () => {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  assert.ok(start >= 0 && end > start, 'docs/errors.md has the generated section markers');
  const expected = renderTables();
  if (process.env.UPDATE_DOCS === '1') {
    writeFileSync(DOC, doc.slice(0, start) + expected + doc.slice(end + END.length));
    return;
  }
  assert.equal(
    doc.slice(start, end + END.length),
    expected,
    'docs/errors.md is stale: run UPDATE_DOCS=1 node --import tsx --test test/errors-doc.test.ts',
  );
});

test('every Graph error code and status is one Graph uses for it', () => {
  for (const [name, e] of Object.entries(graphErrors)) {
    assert.ok(e.status >= 400 && e.status < 600, name);
    assert.ok(e.code.length > 0 && e.message.length > 0, name);
  }
  assert.deepEqual(
    [graphErrors.callNotFound.status, graphErrors.callNotFound.code, graphErrors.callNotFound.message],
    [404, '8522', 'Call not found.'],
  );
  assert.equal(graphErrors.tokenMissing().message, 'Access token is empty.');
  assert.equal(graphErrors.tokenInvalid({ reason: 'Invalid audience.' }).message, 'Access token validation failure. Invalid audience.');
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { callBody, startServer, type TestServer } from './helpers.js';
import { FIXTURES } from './paths.js';

const SPEC = `${FIXTURES}graph/CloudCommunications.v1.0.yml`;

/**
 * The PowerShell-flavoured OpenAPI declares `additionalProperties: {type: object}` everywhere,
 * which would reject Graph's own string annotations (docs/decisions.md) and innerError's strings;
 * such extras are allowed here, everything else (types, enums, required) is checked as written.
 */
function relax(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relax);
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === 'additionalProperties' ? true : relax(v);
    return out;
  }
  return node;
}

/** Graph's annotations are not part of the schemas. */
function stripOData(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripOData);
  if (node && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k]) => !k.startsWith('@odata.'))
        .map(([k, v]) => [k, stripOData(v)]),
    );
  }
  return node;
}

describe("responses validate against Graph's OpenAPI description", () => {
  let s: TestServer;
  let callSchema: ValidateFunction;
  let errorSchema: ValidateFunction;
  let spec: { paths: Record<string, Record<string, unknown>>; components: Record<string, unknown> };

  before(async () => {
    spec = parse(readFileSync(SPEC, 'utf8')) as typeof spec;
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    ajv.addSchema({ $id: 'graph', components: relax(spec.components) });
    callSchema = ajv.compile({ $ref: 'graph#/components/schemas/microsoft.graph.call' });
    errorSchema = ajv.compile({ $ref: 'graph#/components/schemas/microsoft.graph.ODataErrors.ODataError' });
    s = await startServer();
  });
  after(() => s.close());

  const valid = (v: ValidateFunction, data: unknown) => {
    const ok = v(stripOData(data));
    assert.ok(ok, JSON.stringify(v.errors, null, 2));
  };

  test('the operations callkeeper serves are the ones the description names', () => {
    assert.ok(spec.paths['/communications/calls']?.post);
    assert.ok(spec.paths['/communications/calls/{call-id}']?.get);
    assert.ok(spec.paths['/communications/calls/{call-id}']?.delete);
    assert.ok(spec.paths['/communications/calls/{call-id}/microsoft.graph.keepAlive']?.post);
  });

  test('the create body the tests send is a valid microsoft.graph.call', () => {
    valid(callSchema, callBody());
  });

  test('create and get answer a valid microsoft.graph.call', async () => {
    const res = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        callBody({
          subject: 's',
          callOptions: { '@odata.type': '#microsoft.graph.outgoingCallOptions', isContentSharingNotificationEnabled: true },
        }),
      ),
    });
    const created = (await res.json()) as { id: string };
    valid(callSchema, created);
    await s.advance(60_000);
    const got = await (await s.graph(`/v1.0/communications/calls/${created.id}`)).json();
    valid(callSchema, got);
  });

  test('a schema violation is caught (the check can fail)', () => {
    assert.equal(callSchema(stripOData({ id: 'x', state: 'dancing' })), false);
    assert.equal(errorSchema({ error: { code: 1 } }), false);
  });

  test('every kind of error body is a valid ODataError', async () => {
    const responses = [
      await s.graph('/v1.0/communications/calls/nope/keepAlive', { method: 'POST' }),
      await fetch(`${s.base}/v1.0/communications/calls/nope`),
      await s.graph('/v1.0/communications/calls', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }),
      await s.graph('/v1.0/communications/calls', { method: 'PUT' }),
      await s.graph('/v1.0/nothing'),
    ];
    for (const res of responses) valid(errorSchema, await res.json());
  });
});

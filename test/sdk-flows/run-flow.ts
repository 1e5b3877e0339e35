/**
 * Runs one SDK flow in its own process, as a bot would: with NODE_EXTRA_CA_CERTS trusting
 * callkeeper's CA (the official clients talk only https). Prints the FlowResult as JSON.
 * Usage: run-flow.ts <graph-client|kiota|graph-client-hours|graph-client-prompt|kiota-prompt>, configured by CK_FLOW_* environment
 * variables. CK_FLOW_WAIT=1: time passes on its own (a server with --time-scale); the flow waits
 * for the server's clock instead of moving it. CK_FLOW_HOURS: how long graph-client-hours keeps
 * its call (default 10).
 */
import { type FlowTarget, graphClientFlow, graphClientHoursFlow, kiotaFlow } from './flows.js';
import { graphClientPromptFlow, kiotaPromptFlow } from './operation-flows.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const control = process.env.CK_FLOW_CONTROL_URL;

async function serverNow(): Promise<number> {
  const res = await fetch(`${control}/clock`);
  if (!res.ok) throw new Error(`clock answered ${res.status}`);
  return ((await res.json()) as { epochMs: number }).epochMs;
}

/** Polls the server's clock until `ms` of its time has passed (bounded by the test's timeout). */
async function waitFor(ms: number): Promise<void> {
  const until = (await serverNow()) + ms;
  while ((await serverNow()) < until) await new Promise((r) => setTimeout(r, 20));
}

async function advance(ms: number): Promise<void> {
  const res = await fetch(`${control}/clock/advance`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ms }),
  });
  if (!res.ok) throw new Error(`advance answered ${res.status}`);
}
const target: FlowTarget = {
  graphUrl: env('CK_FLOW_GRAPH_URL'),
  authority: env('CK_FLOW_AUTHORITY'),
  resource: env('CK_FLOW_RESOURCE'),
  tenantId: env('CK_FLOW_TENANT'),
  clientId: env('CK_FLOW_CLIENT_ID'),
  clientSecret: env('CK_FLOW_CLIENT_SECRET'),
  callbackUri: env('CK_FLOW_CALLBACK_URI'),
  targetUserId: env('CK_FLOW_TARGET_USER'),
  ...(control ? { advance: process.env.CK_FLOW_WAIT === '1' ? waitFor : advance } : {}),
};

const flows: Record<string, (t: FlowTarget) => Promise<unknown>> = {
  'graph-client': graphClientFlow,
  kiota: kiotaFlow,
  'graph-client-hours': (t) => graphClientHoursFlow(t, Number(process.env.CK_FLOW_HOURS ?? 10)),
  'graph-client-prompt': graphClientPromptFlow,
  'kiota-prompt': kiotaPromptFlow,
};
const flow = flows[process.argv[2] ?? ''];
if (!flow) throw new Error(`unknown flow '${process.argv[2]}'`);
flow(target).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : JSON.stringify(err)}\n`);
    process.exit(1);
  },
);

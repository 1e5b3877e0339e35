/**
 * Runs one SDK flow in its own process, as a bot would: with NODE_EXTRA_CA_CERTS trusting
 * callkeeper's CA (the official clients talk only https). Prints the FlowResult as JSON.
 * Usage: run-flow.ts <graph-client|kiota>, configured by CK_FLOW_* environment variables.
 */
import { type FlowTarget, graphClientFlow, kiotaFlow } from './flows.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const control = process.env.CK_FLOW_CONTROL_URL;
const target: FlowTarget = {
  graphUrl: env('CK_FLOW_GRAPH_URL'),
  authority: env('CK_FLOW_AUTHORITY'),
  resource: env('CK_FLOW_RESOURCE'),
  tenantId: env('CK_FLOW_TENANT'),
  clientId: env('CK_FLOW_CLIENT_ID'),
  clientSecret: env('CK_FLOW_CLIENT_SECRET'),
  callbackUri: env('CK_FLOW_CALLBACK_URI'),
  targetUserId: env('CK_FLOW_TARGET_USER'),
  ...(control
    ? {
        advance: async (ms: number) => {
          const res = await fetch(`${control}/clock/advance`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ms }),
          });
          if (!res.ok) throw new Error(`advance answered ${res.status}`);
        },
      }
    : {}),
};

const flow = process.argv[2] === 'kiota' ? kiotaFlow : graphClientFlow;
flow(target).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : JSON.stringify(err)}\n`);
    process.exit(1);
  },
);

import { type ChildProcess, execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { spawnTracked, waitUntil } from './children.js';

/**
 * The peers: other local mock servers a bot developer might point at instead, each serving
 * the canned keepAlive answer (POST /v1.0/communications/calls/{id}/keepAlive -> 200, empty).
 * Versions are pinned; prism-cli 5.14.2 is the last release that runs on Node.js 20.
 */
export const PEER_PACKAGES = {
  '@mockoon/cli': '9.9.0',
  wiremock: '3.13.2',
  '@stoplight/prism-cli': '5.14.2',
  'json-server': '0.17.4',
} as const;

/** Installed once per set of versions; later runs reuse it. */
export const PEERS_DIR = join(tmpdir(), `callkeeper-bench-peers-${Object.values(PEER_PACKAGES).join('-')}`);

const run = promisify(execFile);

/** npm-installs the peers into PEERS_DIR (skipped when already there). */
export async function installPeers(): Promise<void> {
  const stamp = join(PEERS_DIR, 'installed.json');
  if (existsSync(stamp)) return;
  mkdirSync(PEERS_DIR, { recursive: true });
  writeFileSync(join(PEERS_DIR, 'package.json'), JSON.stringify({ name: 'callkeeper-bench-peers', private: true }));
  const specs = Object.entries(PEER_PACKAGES).map(([name, version]) => `${name}@${version}`);
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs], {
    cwd: PEERS_DIR,
    maxBuffer: 16 * 2 ** 20,
    timeout: 420_000,
  });
  writeFileSync(stamp, JSON.stringify(PEER_PACKAGES));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const KEEPALIVE_PATH = '/v1.0/communications/calls/:id/keepAlive';

export interface Peer {
  name: string;
  version: string;
  /** JIT-compiled runtimes (the JVM) need longer to reach their speed. */
  warmupSeconds: number;
  start(dir: string, port: number): ChildProcess;
}

const node = process.execPath;
const pkg = (...p: string[]) => join(PEERS_DIR, 'node_modules', ...p);

function mockoonEnvironment(port: number) {
  const response = {
    uuid: '00000000-0000-4000-8000-0000000000b1',
    body: '',
    latency: 0,
    statusCode: 200,
    label: '',
    headers: [{ key: 'Content-Type', value: 'text/plain' }],
    bodyType: 'INLINE',
    filePath: '',
    databucketID: '',
    sendFileAsBody: false,
    rules: [],
    rulesOperator: 'OR',
    disableTemplating: true,
    fallbackTo404: false,
    default: true,
    crudKey: 'id',
    callbacks: [],
  };
  const route = {
    uuid: '00000000-0000-4000-8000-0000000000a1',
    type: 'http',
    documentation: 'keepAlive',
    method: 'post',
    endpoint: KEEPALIVE_PATH.slice(1),
    responses: [response],
    responseMode: null,
    streamingMode: null,
    streamingInterval: 0,
  };
  return {
    uuid: '00000000-0000-4000-8000-0000000000e1',
    lastMigration: 33,
    name: 'keepAlive',
    endpointPrefix: '',
    latency: 0,
    port,
    hostname: '127.0.0.1',
    folders: [],
    routes: [route],
    rootChildren: [{ type: 'route', uuid: route.uuid }],
    proxyMode: false,
    proxyHost: '',
    proxyRemovePrefix: false,
    tlsOptions: { enabled: false, type: 'CERT', pfxPath: '', certPath: '', keyPath: '', caPath: '', passphrase: '' },
    cors: false,
    headers: [],
    proxyReqHeaders: [],
    proxyResHeaders: [],
    data: [],
    callbacks: [],
  };
}

const openApi = {
  openapi: '3.0.3',
  info: { title: 'keepAlive', version: '1.0' },
  paths: {
    '/v1.0/communications/calls/{id}/keepAlive': {
      post: {
        operationId: 'keepAlive',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'OK' } },
      },
    },
  },
};

const JSON_SERVER_MIDDLEWARE = `// keepAlive answered 200, empty; everything else goes on to json-server.
const KEEPALIVE = /^\\/v1\\.0\\/communications\\/calls\\/[^/]+\\/keepAlive$/;
module.exports = (req, res, next) => {
  if (req.method === 'POST' && KEEPALIVE.test(req.path)) return res.status(200).type('text/plain').send('');
  next();
};
`;

export const PEERS: Peer[] = [
  {
    name: 'Mockoon CLI',
    version: PEER_PACKAGES['@mockoon/cli'],
    warmupSeconds: 2,
    start(dir, port) {
      const file = join(dir, 'mockoon.json');
      writeFileSync(file, JSON.stringify(mockoonEnvironment(port)));
      const bin = pkg('@mockoon', 'cli', 'bin', 'run.js');
      return spawnTracked(node, [bin, 'start', '-d', file, '-p', String(port), '-l', '127.0.0.1', '-X', '--disable-admin-api', '-r'], {
        cwd: dir,
      });
    },
  },
  {
    name: 'WireMock',
    version: PEER_PACKAGES.wiremock,
    warmupSeconds: 5,
    start(dir, port) {
      mkdirSync(join(dir, 'mappings'), { recursive: true });
      writeFileSync(
        join(dir, 'mappings', 'keepalive.json'),
        JSON.stringify({
          request: { method: 'POST', urlPathPattern: '/v1\\.0/communications/calls/[^/]+/keepAlive' },
          response: { status: 200, headers: { 'Content-Type': 'text/plain' } },
        }),
      );
      // The npm package is a launcher for its bundled jar; run the jar directly so it can be stopped.
      const jar = pkg('wiremock', 'build', `wiremock-standalone-${PEER_PACKAGES.wiremock}.jar`);
      const flags = ['--port', String(port), '--bind-address', '127.0.0.1', '--root-dir', dir];
      return spawnTracked('java', ['-jar', jar, ...flags, '--no-request-journal', '--disable-request-logging', '--disable-banner'], {
        cwd: dir,
      });
    },
  },
  {
    name: 'Prism',
    version: PEER_PACKAGES['@stoplight/prism-cli'],
    warmupSeconds: 2,
    start(dir, port) {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(openApi));
      const bin = pkg('@stoplight', 'prism-cli', 'dist', 'index.js');
      return spawnTracked(node, [bin, 'mock', file, '-p', String(port), '-h', '127.0.0.1', '-v', 'warn', '--cors', 'false'], { cwd: dir });
    },
  },
  {
    name: 'json-server',
    version: PEER_PACKAGES['json-server'],
    warmupSeconds: 2,
    start(dir, port) {
      writeFileSync(join(dir, 'db.json'), '{}');
      writeFileSync(join(dir, 'keepalive.cjs'), JSON_SERVER_MIDDLEWARE);
      const bin = pkg('json-server', 'lib', 'cli', 'bin.js');
      // The source first: --middlewares takes every argument after it.
      const args = [bin, 'db.json', '--host', '127.0.0.1', '--port', String(port), '--quiet', '--middlewares', 'keepalive.cjs'];
      return spawnTracked(node, args, { cwd: dir });
    },
  },
];

/** Waits until the peer answers a keepAlive with 200; fails at once if its process exits. */
export async function waitForKeepAlive(proc: ChildProcess, origin: string, timeoutMs: number): Promise<void> {
  const exited = new Promise<never>((_, reject) => {
    proc.once('exit', (code, signal) => reject(new Error(`it exited (${code ?? signal}) before serving`)));
  });
  exited.catch(() => {});
  const ready = waitUntil(
    async () => {
      const res = await request(`${origin}/v1.0/communications/calls/ready-probe/keepAlive`, { method: 'POST' });
      await res.body.dump();
      return res.statusCode === 200;
    },
    timeoutMs,
    100,
  );
  await Promise.race([ready, exited]);
}

/** The installed version of a peer package, as npm resolved it. */
export function installedVersion(name: string): string {
  const meta = JSON.parse(readFileSync(pkg(...name.split('/'), 'package.json'), 'utf8')) as { version?: string };
  return meta.version ?? 'unknown';
}

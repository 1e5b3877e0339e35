import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * Real redis-server processes for tests, on loopback ports, in a temp directory, gone when
 * stopped. `.ci/run` installs redis-server with apt-get; tests never share a server.
 */
export interface RedisServer {
  /** redis://127.0.0.1:port */
  readonly url: string;
  readonly port: number;
  /** SIGKILLs the server (a crash) and removes its directory. */
  stop(): Promise<void>;
}

export interface RedisCluster {
  /** Every master's redis://127.0.0.1:port. */
  readonly urls: string[];
  readonly ports: number[];
  stop(): Promise<void>;
}

/** A free loopback TCP port (the OS picks it). */
export function freePort(): Promise<number> {
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

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 });
  return stdout.trim();
}

async function waitUntilOursAnswers(port: number, child: ChildProcess): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    // INFO, not PING: a server already on this port (another test's) would answer PING too.
    const info = await cli(port, 'INFO', 'server').catch(() => ''); // not up yet
    const pid = /process_id:(\d+)/.exec(info)?.[1];
    if (pid === String(child.pid)) return;
    if (pid !== undefined || info.startsWith('NOAUTH')) throw new Error(`port ${port} is another redis-server's`);
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Ports for redis-servers come from below the OS's ephemeral range (32768-60999 here): a port
 * the OS handed out once (freePort) can be handed out again to any outgoing connection before
 * redis-server binds it, and then the server exits with 1. A cluster node also binds port+10000
 * for its bus, so cluster ports stay low enough for the bus to stay below the range too.
 */
const QUIET_PORTS = { first: 20_000, plain: 12_000, cluster: 2_700 } as const;

async function startOne(dir: string, extra: string[], cluster = false): Promise<{ port: number; child: ChildProcess }> {
  for (let tries = 1; ; tries++) {
    const port = QUIET_PORTS.first + Math.floor(Math.random() * (cluster ? QUIET_PORTS.cluster : QUIET_PORTS.plain));
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
        ...extra,
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitUntilOursAnswers(port, child);
      return { port, child };
    } catch (err) {
      // Taken by another test's server or receiver (redis-server exits, or another server
      // answers INFO): try another port.
      await killAndWait(child);
      if (tries >= 20) throw err;
    }
  }
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Starts one redis-server (no persistence unless `extra` asks for it). */
export async function startRedis(extra: string[] = []): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'callkeeper-redis-'));
  const { port, child } = await startOne(dir, extra);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await killAndWait(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts `masters` cluster-enabled redis-servers and joins them with `redis-cli --cluster create`. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'callkeeper-redis-cluster-'));
  const nodes: { port: number; child: ChildProcess }[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      const nodeDir = join(dir, String(i));
      await exec('mkdir', ['-p', nodeDir]);
      nodes.push(
        await startOne(
          nodeDir,
          ['--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-node-timeout', '5000'],
          true,
        ),
      );
    }
    const ports = nodes.map((n) => n.port);
    await exec('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 60_000,
    });
    // Every node, not only the first: a client whose ready check meets a node still saying
    // cluster_state:fail reconnects, and ioredis's first connect() promise never settles then.
    const until = Date.now() + 20_000;
    const ready = async (port: number) => {
      const info = await cli(port, 'CLUSTER', 'INFO');
      return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${masters}`);
    };
    while (!(await Promise.all(ports.map(ready))).every(Boolean)) {
      if (Date.now() > until) throw new Error('redis cluster did not reach cluster_state:ok on every node within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      urls: ports.map((p) => `redis://127.0.0.1:${p}`),
      ports,
      async stop() {
        await Promise.all(nodes.map((n) => killAndWait(n.child)));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(nodes.map((n) => killAndWait(n.child)));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

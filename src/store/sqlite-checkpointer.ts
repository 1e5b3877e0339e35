import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);

// A CommonJS worker given as source, so it runs the same from src (tsx) and from dist.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} };
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

/**
 * Moves WAL checkpoints off the request path. SQLite's automatic checkpoint runs inside
 * whichever commit crosses the threshold and fsyncs the database there, a multi-millisecond
 * stall in the middle of a keepAlive. Here a worker thread with its own connection checkpoints
 * (PASSIVE: it never blocks the writer) every `intervalMs`.
 */
export class SqliteCheckpointer {
  private readonly worker: Worker;

  constructor(path: string, intervalMs = 200) {
    this.worker = new Worker(SOURCE, { eval: true, workerData: { path, intervalMs, module: require.resolve('better-sqlite3') } });
    this.worker.unref();
  }

  async close(): Promise<void> {
    // Unref'd while idle so it never keeps a process alive; ref'd while we wait for it.
    this.worker.ref();
    const exited = once(this.worker, 'exit');
    this.worker.postMessage('close');
    await exited;
  }
}

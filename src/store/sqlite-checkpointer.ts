import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);

// A CommonJS worker given as source, so it runs the same from src (tsx) and from dist.
// A pass that leaves the WAL over its limit is followed at once by more: each copies what was
// written during the one before, fewer frames each time (and a shorter fsync), until one copies
// fewer than `tail` frames; then the writer is told to finish (SqliteCheckpointer's doc).
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const pass = () => db.pragma('wal_checkpoint(PASSIVE)')[0];
const checkpoint = () => {
  try {
    let r = pass();
    if (!r || r.busy || r.log < workerData.limitFrames) return;
    for (let i = 0; i < 8; i++) {
      const before = r.checkpointed;
      r = pass();
      if (!r || r.busy) return;
      if (r.checkpointed - before < workerData.tailFrames) break;
    }
    parentPort.postMessage('full');
  } catch {}
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

export interface CheckpointerOptions {
  /** Frames in the WAL past which it should restart (WAL_LIMIT in pages). */
  limitFrames: number;
  /** Told, on the writer's thread, when the worker has copied all but the last few frames of a WAL past its limit. */
  onFull: () => void;
  intervalMs?: number;
  /** A pass copying fewer frames than this has caught up closely enough for the writer to finish. */
  tailFrames?: number;
}

/**
 * Moves WAL checkpoints off the request path. SQLite's automatic checkpoint runs inside
 * whichever commit crosses the threshold and fsyncs the database there, a multi-millisecond
 * stall in the middle of a keepAlive. Here a worker thread with its own connection checkpoints
 * (PASSIVE: it never blocks the writer) every `intervalMs`.
 *
 * PASSIVE passes alone never let a WAL restart under writes that never pause (each leaves
 * what was committed meanwhile), so it would grow without end. So when the WAL is past its
 * limit the worker catches up pass after pass and then tells the writer (`onFull`), whose own
 * PASSIVE checkpoint copies the few frames left with no commit in between: the WAL is then
 * complete and the next commit restarts it.
 */
export class SqliteCheckpointer {
  private readonly worker: Worker;

  constructor(path: string, options: CheckpointerOptions) {
    const { limitFrames, onFull, intervalMs = 200, tailFrames = 64 } = options;
    this.worker = new Worker(SOURCE, {
      eval: true,
      workerData: { path, intervalMs, limitFrames, tailFrames, module: require.resolve('better-sqlite3') },
    });
    this.worker.on('message', () => onFull());
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

import type { Clock, Timer } from '../clock/clock.js';
import type { CallObserver } from './call-events.js';
import type { CallSummary } from './call-types.js';

export interface DueWork {
  processDue(): Promise<number>;
  nextDueAt(): Promise<number | undefined>;
}

export interface SchedulerLogger {
  error(obj: unknown, msg: string): void;
}

/**
 * Ends calls on time without anyone asking: sleeps (on the Clock) until the store's next due
 * moment, runs the work, and sleeps again. New calls with an earlier moment wake it sooner.
 * With a store shared by several instances, another instance's calls are seen within
 * `pollWallMs` of wall time.
 */
export class DueScheduler implements CallObserver {
  private timer: Timer | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly work: DueWork,
    private readonly clock: Clock,
    private readonly log: SchedulerLogger,
    private readonly pollWallMs = 1000,
  ) {}

  /** Runs everything already due (calls that expired while the server was down), then keeps watch. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.runNow();
  }

  /** Runs due work now; resolves when it, and a re-run asked for meanwhile, finished. */
  runNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.work.processDue();
        } catch (err) {
          this.log.error({ err }, 'processing due calls failed; retrying');
        }
      } while (this.again && !this.stopped);
      await this.rearm();
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Something is due at `at`: wake by then. */
  wakeBy(at: number): void {
    if (this.stopped || at >= this.armedAt) return;
    this.arm(at);
  }

  onCallChanged(call: CallSummary): void {
    const next = Math.min(call.establishAt ?? Number.POSITIVE_INFINITY, call.deadline ?? Number.POSITIVE_INFINITY);
    if (Number.isFinite(next)) this.wakeBy(next);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  /** Settles when no run is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async rearm(): Promise<void> {
    if (this.stopped) return;
    let next: number | undefined;
    try {
      next = await this.work.nextDueAt();
    } catch (err) {
      this.log.error({ err }, 'reading the next due time failed');
    }
    const poll = this.clock.scale > 0 ? this.clock.now() + this.pollWallMs * this.clock.scale : Number.POSITIVE_INFINITY;
    // armedAt may hold a wake-up asked for (wakeBy) while this run was reading the store.
    this.arm(Math.min(next ?? Number.POSITIVE_INFINITY, poll, this.armedAt));
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedAt = at;
    if (!Number.isFinite(at) || this.stopped) return;
    this.timer = this.clock.setTimer(at, () => {
      this.timer = undefined;
      this.armedAt = Number.POSITIVE_INFINITY;
      void this.runNow();
    });
  }
}

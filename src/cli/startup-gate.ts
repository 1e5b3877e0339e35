import { Writable } from 'node:stream';

/**
 * The log stream of `serve`: holds log lines written while starting, and lets them through once
 * the banner or the `ready` event is out, so that it is always the first line a reader sees.
 */
export class StartupGate extends Writable {
  private held: Buffer[] | undefined = [];

  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.held) {
      this.held.push(chunk);
      done();
      return;
    }
    this.out.write(chunk, () => done());
  }

  /** Releases what was held; from now on lines go straight through. */
  open(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const chunk of held) this.out.write(chunk);
  }
}

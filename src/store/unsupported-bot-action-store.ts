import { graphErrors } from '../errors/graph-errors.js';
import type { BotActionStore, OperationStart, Tagged, TonesOutcome } from './bot-action-store.js';

/**
 * A call store with no bot-action store beside it (yet): calls, keepAlives, hang-ups and their
 * notifications work; every participant, operation or tone request answers Graph's 501
 * NotImplemented naming `feature`, never a 500 or a crash. Nothing is ever due here.
 */
export class UnsupportedBotActionStore implements BotActionStore {
  constructor(private readonly feature: string) {}

  private refuse(): never {
    throw graphErrors.notImplemented({ feature: this.feature });
  }

  async seedRoster(): Promise<boolean> {
    return false;
  }
  async roster(): Promise<never> {
    this.refuse();
  }
  async participant(): Promise<never> {
    this.refuse();
  }
  async join(): Promise<never> {
    this.refuse();
  }
  async updateParticipant(): Promise<never> {
    this.refuse();
  }
  async leave(): Promise<never> {
    this.refuse();
  }
  async startOperation(_s: unknown, _o: unknown, _start: OperationStart): Promise<never> {
    this.refuse();
  }
  async operation(): Promise<never> {
    this.refuse();
  }
  async operations(): Promise<never> {
    this.refuse();
  }
  async runDue(): Promise<[]> {
    return [];
  }
  async nextDueAt(): Promise<undefined> {
    return undefined;
  }
  async cancelMedia(): Promise<never> {
    this.refuse();
  }
  async tones(): Promise<Tagged<TonesOutcome>> {
    this.refuse();
  }
  async silence(): Promise<never> {
    this.refuse();
  }
}

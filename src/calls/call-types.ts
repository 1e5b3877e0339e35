/** The call states Graph's CSDL defines (FACTS.md §5). */
export type CallState =
  | 'incoming'
  | 'establishing'
  | 'established'
  | 'hold'
  | 'transferring'
  | 'transferAccepted'
  | 'redirecting'
  | 'terminating'
  | 'terminated';

export interface ResultInfo {
  code: number;
  subcode: number;
  message: string;
}

/** Who a call belongs to: only this app in this tenant may see or touch it. */
export interface CallOwner {
  appId: string;
  tenantId: string;
}

/** The properties a client gave (or Graph derived) at creation; never change afterwards. */
export type CallResource = Record<string, unknown>;

export interface CallRecord {
  id: string;
  owner: CallOwner;
  state: CallState;
  direction: 'incoming' | 'outgoing';
  /** Virtual epoch ms. */
  createdAt: number;
  lastKeepAliveAt: number | null;
  /** When the call ends unless kept alive; null once ended. */
  deadline: number | null;
  /** When an establishing call becomes established; null once it has (or it ended). */
  establishAt: number | null;
  endedAt: number | null;
  resultInfo: ResultInfo | null;
  resource: CallResource;
}

/** FACTS.md §2: the documented end of a call for missing keepAlives. */
export const KEEPALIVE_TIMEOUT_RESULT: ResultInfo = {
  code: 408,
  subcode: 8537,
  message: 'Keep Alive timeout, cleaned up inactive call.',
};

/**
 * The end of a call the bot hung up (DELETE). No public source shows Graph's exact values;
 * see docs/decisions.md.
 */
export const APP_HANGUP_RESULT: ResultInfo = {
  code: 200,
  subcode: 5001,
  message: 'Call ended by the application.',
};

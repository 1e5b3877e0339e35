/** The call states Graph's CSDL defines (callState in https://learn.microsoft.com/graph/api/resources/call). */
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

/**
 * A call whose creation properties may be left out: what an expiry sweep reports of each call
 * it ended. The resource comes for incoming calls (an unanswered one is logged with what it
 * was); a sweep of 100,000 outgoing calls then reads and parses no resource JSON.
 */
export type CallSummary = Omit<CallRecord, 'resource'> & { resource?: CallResource };

/** The documented end of a call not kept alive (https://learn.microsoft.com/graph/api/call-keepalive; resultInfo). */
export const KEEPALIVE_TIMEOUT_RESULT: ResultInfo = {
  code: 408,
  subcode: 8537,
  message: 'Keep Alive timeout, cleaned up inactive call.',
};

/** The bot hung up (DELETE): Graph's documented call-end reason 200/7000. */
export const APP_HANGUP_RESULT: ResultInfo = {
  code: 200,
  subcode: 7000,
  message: 'The conversation has ended by bot.',
};

/** The other party hung up: Graph's documented call-end reason 200/18503. */
export const REMOTE_HANGUP_RESULT: ResultInfo = {
  code: 200,
  subcode: 18503,
  message: 'The other participant in the peer-to-peer call left the conversation.',
};

/** An incoming call the bot did not answer in time (documented 408/10057). */
export const UNANSWERED_RESULT: ResultInfo = {
  code: 408,
  subcode: 10057,
  message: 'Call timed out due to no signaling from callee endpoints.',
};

/** The bot rejected an incoming call: the SIP status for its reason (see docs/decisions.md). */
export const REJECT_RESULTS: Readonly<Record<'none' | 'busy' | 'forbidden', ResultInfo>> = {
  none: { code: 603, subcode: 0, message: 'The call was declined by the application.' },
  busy: { code: 486, subcode: 0, message: 'The application is busy.' },
  forbidden: { code: 403, subcode: 0, message: 'The application refused the call.' },
};

/** The bot redirected an incoming call elsewhere: its leg ends. */
export const REDIRECTED_RESULT: ResultInfo = {
  code: 302,
  subcode: 0,
  message: 'The call was redirected by the application.',
};

/**
 * How long the bot has to answer an incoming call: "15 seconds for regular scenarios and 5
 * seconds for policy-based recording scenarios" (https://learn.microsoft.com/graph/api/call-answer).
 */
export const ANSWER_WINDOW_MS = 15_000;
export const POLICY_RECORDING_ANSWER_WINDOW_MS = 5_000;

/**
 * A policy-based (compliance) recording call is one whose incomingContext names an observed
 * participant: Graph sets it only for those, and the recording samples tell them apart by it
 * (docs/decisions.md, "Policy-based recording calls").
 */
export function isPolicyRecording(resource: CallResource): boolean {
  const ctx = resource.incomingContext as { observedParticipantId?: unknown } | undefined;
  return typeof ctx?.observedParticipantId === 'string' && ctx.observedParticipantId !== '';
}

/** The answer window of an incoming call with this resource. */
export function answerWindowMs(resource: CallResource): number {
  return isPolicyRecording(resource) ? POLICY_RECORDING_ANSWER_WINDOW_MS : ANSWER_WINDOW_MS;
}

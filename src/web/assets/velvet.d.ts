// Type declarations of the Velvet consumer SDK, v1 (`/sdk/v1/velvet.js`).

export declare const VERSION: string;

/** Error codes of the public contract, plus the SDK's own for failures
 * that never reached the server. */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'UNAUTHORIZED'
  | 'INVALID_TOKEN'
  | 'TOKEN_EXPIRED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'NOT_OPEN'
  | 'CLOSED'
  | 'CAPACITY_REACHED'
  | 'SOLD_OUT'
  | 'ALREADY_REDEEMED'
  | 'ALREADY_ENTERED'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'SERVICE_UNAVAILABLE'
  | 'NETWORK_ERROR'
  | (string & {});

export declare class VelvetError extends Error {
  readonly name: 'VelvetError';
  readonly code: ErrorCode;
  /** HTTP status; 0 when the server was not reached or for socket errors. */
  readonly status: number;
  readonly retryAfterSeconds: number | null;
  /** True for network errors, 5xx and 429. */
  readonly retryable: boolean;
  constructor(
    code: string,
    message?: string,
    status?: number,
    retryAfterSeconds?: number | null,
  );
}

export interface VelvetOptions {
  /** Retries of one request after a network error, 5xx or 429. Default 5. */
  maxRetries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** Interval of HTTP polling while the WebSocket is down. Default 3000. */
  pollIntervalMs?: number;
  readyTimeoutMs?: number;
  requestTimeoutMs?: number;
  stableAfterMs?: number;
  /** False: never open a WebSocket, poll over HTTP only. Default true. */
  realtime?: boolean;
  /** A shop-signed account assertion, sent when a session is created. */
  assertion?: string | (() => string | Promise<string>);
  /** Where the session is kept. Default: localStorage, else memory. */
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
}

export interface Session {
  consumerId: string;
  sessionToken: string;
  expiresAt: string;
  externalId?: string;
}

export type QueueEntryState =
  | 'pre-queue'
  | 'waiting'
  | 'admitted'
  | 'redeemed'
  | 'expired'
  | 'left';

export interface QueueEntry {
  queueId: string;
  state: QueueEntryState;
  position: number | null;
  estimatedWaitSeconds: number | null;
  handoffToken: string | null;
  expiresAt: string | null;
  enteredAt: string;
}

export interface DrawRegistration {
  drawId: string;
  state: 'registered';
  drawAt: string | null;
  registeredAt: string;
}

export type DrawState = 'pending' | 'won' | 'lost' | 'waitlisted';

export interface DrawResult {
  drawId: string;
  state: DrawState;
  isWinner: boolean;
  handoffToken: string | null;
  expiresAt: string | null;
  registeredAt: string;
}

export type ExperienceEntry =
  | ({ sequenceId: string; kind: 'queue' } & QueueEntry)
  | ({ sequenceId: string; kind: 'draw' } & DrawRegistration);

export type ExperienceState =
  | 'scheduled'
  | 'open'
  | 'paused'
  | 'sold_out'
  | 'closed';

export interface ExperienceStatus {
  state: ExperienceState;
  queueDepth: number;
  estimatedWaitSeconds: number | null;
  admittedTotal: number;
  inventoryRemaining: number | null;
  announcement: string | null;
  updatedAt: string;
}

export interface PositionUpdated {
  queueId: string;
  state: 'waiting' | 'pre-queue';
  /** 1 means next; null in the pre-queue, before the line opens. */
  position: number | null;
  /** Seconds; null while unknown or paused. */
  estimatedWait: number | null;
  estimatedWaitSeconds: number | null;
}

export interface AccessGranted {
  queueId: string;
  handoffToken: string;
  expiresAt: string | null;
}

export interface DrawOutcome {
  state: Exclude<DrawState, 'pending'>;
  isWinner: boolean;
  handoffToken: string | null;
  expiresAt: string | null;
}

export interface DrawCompleted extends DrawOutcome {
  drawId: string;
  result: DrawOutcome;
}

export interface ExperienceUpdated {
  experienceId: string;
  state: ExperienceState;
  announcement: string | null;
}

/** `live`: WebSocket; `polling`: socket down, HTTP answers; `offline`:
 * neither answers yet, the client keeps trying. */
export type ConnectionState =
  | 'idle'
  | 'connecting'
  | 'live'
  | 'polling'
  | 'offline'
  | 'closed';

export interface VelvetEvents {
  'queue:position-updated': PositionUpdated;
  'queue:access-granted': AccessGranted;
  /** The entry expired, was redeemed or left: no more updates for it. */
  'queue:entry-ended': { queueId: string; state: QueueEntryState };
  'draw:completed': DrawCompleted;
  'experience:updated': ExperienceUpdated;
  error: VelvetError;
  /** A request failed in a way worth retrying, and will be retried. */
  retry: { error: VelvetError; attempt: number; delayMs: number };
  connection: { state: ConnectionState };
}

export declare class Velvet {
  constructor(baseUrl?: string, options?: VelvetOptions);
  readonly baseUrl: string;
  readonly connection: ConnectionState;

  readonly experiences: {
    /** Enters whichever sequence of the experience is open now. */
    enter(id: string): Promise<ExperienceEntry>;
    get(id: string): Promise<Record<string, unknown>>;
    status(id: string): Promise<ExperienceStatus>;
  };
  readonly queues: {
    /** Idempotent: entering twice returns the same entry. */
    enter(id: string): Promise<QueueEntry>;
    position(id: string): Promise<QueueEntry>;
    leave(id: string): Promise<void>;
  };
  readonly draws: {
    enter(id: string): Promise<DrawRegistration>;
    result(id: string): Promise<DrawResult>;
    proof(id: string): Promise<Record<string, unknown>>;
  };

  on<E extends keyof VelvetEvents>(
    event: E,
    handler: (payload: VelvetEvents[E]) => void,
  ): () => void;
  off<E extends keyof VelvetEvents>(
    event: E,
    handler: (payload: VelvetEvents[E]) => void,
  ): void;

  /** This browser's session, created once and shared by its tabs. */
  session(): Promise<Session>;
  resetSession(): void;
  /** Opens the WebSocket; the first `enter` does this for you. */
  connect(): void;
  close(): void;
}

export declare function createClient(baseUrl?: string, options?: VelvetOptions): Velvet;
export default createClient;

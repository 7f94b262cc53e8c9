// Velvet consumer SDK, v1. One dependency-free ES module.
//
//   import { createClient } from 'https://queue.example/sdk/v1/velvet.js';
//   const velvet = createClient('https://queue.example');
//   velvet.on('queue:position-updated', ({ position, estimatedWait }) => …);
//   velvet.on('queue:access-granted', ({ handoffToken }) => …);
//   await velvet.experiences.enter('spring-drop');
//
// The client keeps one session per browser (localStorage, shared by tabs),
// listens on the WebSocket `/v1/ws`, reconnects with exponential backoff and
// jitter, and polls over HTTP while the socket is down. Whatever the source,
// the same events are emitted, each at most once per change.

export const VERSION = '1.0.0';

const DEFAULTS = {
  // Retries of one HTTP request after a network error, a 5xx or a 429.
  maxRetries: 5,
  retryBaseMs: 500,
  retryMaxMs: 30000,
  // WebSocket reconnection backoff.
  reconnectBaseMs: 1000,
  reconnectMaxMs: 30000,
  // HTTP polling while the WebSocket is down.
  pollIntervalMs: 3000,
  // A socket that has not said `ready` by then is given up on.
  readyTimeoutMs: 10000,
  requestTimeoutMs: 15000,
  // A connection must stay up this long before backoff starts from zero,
  // so a socket that drops right after opening cannot reconnect in a loop.
  stableAfterMs: 10000,
  // Set false to use HTTP polling only.
  realtime: true,
};

/** Codes of a session token the server no longer accepts. */
const SESSION_CODES = new Set(['UNAUTHORIZED', 'INVALID_TOKEN', 'TOKEN_EXPIRED']);

/** A refusal or failure, with the contract's `code` and HTTP `status`. */
export class VelvetError extends Error {
  constructor(code, message, status = 0, retryAfterSeconds = null) {
    super(message || code);
    this.name = 'VelvetError';
    this.code = code;
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** Whether trying again later may succeed: network, 5xx and 429. */
  get retryable() {
    return isRetryable(this.status);
  }
}

export function createClient(baseUrl, options) {
  return new Velvet(baseUrl, options);
}

export class Velvet {
  constructor(baseUrl = '', options = {}) {
    this.baseUrl = normaliseBase(baseUrl);
    this.options = { ...DEFAULTS, ...options };
    this._fetch = this.options.fetch || globalThis.fetch.bind(globalThis);
    this._storage = pickStorage(this.options.storage);
    // A given storage (tests, apps) is the only store; else IndexedDB too.
    this._shared = this.options.storage ? null : sharedStore();
    this._refused = new Set();
    this._storageKey = `velvet.session.v1 ${this.baseUrl}`;
    this._handlers = new Map();
    this._seen = new Map();
    this._watched = { queues: new Set(), draws: new Set(), experiences: new Set() };
    this._session = null;
    this._sessionPromise = null;
    this._ws = null;
    this._attempt = 0;
    this._readyAt = 0;
    this._reconnectTimer = null;
    this._pollTimer = null;
    this._connection = 'idle';
    this._closed = false;
    this._listenToBrowser();

    this.experiences = {
      enter: (id) => this._enterExperience(id),
      get: (id) => this._request('GET', `/v1/experiences/${seg(id)}`),
      status: (id) => this._request('GET', `/v1/experiences/${seg(id)}/status`),
    };
    this.queues = {
      enter: (id) => this._queueCall('POST', id, 'enter'),
      position: (id) => this._queueCall('GET', id, 'position'),
      leave: (id) => this._leave(id),
    };
    this.draws = {
      enter: (id) => this._drawCall('POST', id, 'enter'),
      result: (id) => this._drawCall('GET', id, 'result'),
      proof: (id) => this._request('GET', `/v1/draws/${seg(id)}/proof`),
    };
  }

  // === Events ===

  /** Subscribes; returns a function that unsubscribes. */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
  }

  _emit(event, payload) {
    for (const handler of [...(this._handlers.get(event) || [])]) {
      try {
        handler(payload);
      } catch (e) {
        // One broken handler must not stop the others or the client.
        setTimeout(() => { throw e; });
      }
    }
  }

  /** Emits unless the same key last carried the same value. */
  _emitChange(event, key, signature, payload) {
    if (this._seen.get(key) === signature) return;
    this._seen.set(key, signature);
    this._emit(event, payload);
  }

  /**
   * `idle`, `connecting`, `live` (WebSocket), `polling` (socket down, HTTP
   * answers), `offline` (neither answers; still trying), or `closed`.
   */
  get connection() {
    return this._connection;
  }

  _setConnection(state) {
    if (this._connection === state) return;
    this._connection = state;
    this._emit('connection', { state });
  }

  // === Session ===

  /** The stored session, created once per browser and shared by its tabs. */
  async session() {
    if (this._session && !expiresSoon(this._session)) return this._session;
    const stored = this._readStored();
    if (stored) return (this._session = stored);
    if (!this._sessionPromise) {
      this._sessionPromise = this._createSession().finally(() => {
        this._sessionPromise = null;
      });
    }
    return this._sessionPromise;
  }

  /** Forgets this browser's session: the next call starts a new one. */
  resetSession() {
    this._dropSession(this._session?.sessionToken);
  }

  async _createSession() {
    const create = async () => {
      // Another tab may have created one while this one waited for the
      // lock. IndexedDB decides: a localStorage write reaches other tabs'
      // processes late, so two tabs opened together could miss each other.
      const again = (await this._readShared()) || this._readStored();
      if (again) {
        this._writeStored(again);
        return again;
      }
      const assertion = await resolve(this.options.assertion);
      const body = assertion ? { assertion } : undefined;
      const session = await this._request('POST', '/v1/sessions', { body });
      await this._writeShared(session);
      this._writeStored(session);
      return session;
    };
    // Web Locks let one tab at a time look for a session and make one.
    const locks = globalThis.navigator?.locks;
    const session = locks
      ? await locks.request(this._storageKey, create)
      : await create();
    this._session = session;
    return session;
  }

  _usable(session) {
    return session?.sessionToken
      && !this._refused.has(session.sessionToken)
      && !expiresSoon(session)
      ? session
      : null;
  }

  _readStored() {
    try {
      return this._usable(JSON.parse(this._storage.getItem(this._storageKey)));
    } catch {
      return null;
    }
  }

  async _readShared() {
    try {
      return this._usable(await this._shared?.get(this._storageKey));
    } catch {
      return null;
    }
  }

  async _writeShared(session) {
    try {
      await this._shared?.set(this._storageKey, session);
    } catch {
      // IndexedDB refused (some private modes): localStorage still holds it.
    }
  }

  _writeStored(session) {
    try {
      this._storage.setItem(this._storageKey, JSON.stringify(session));
    } catch {
      // Storage full or refused: the session lives in memory only.
    }
  }

  /** Drops a refused session, unless another tab has replaced it already. */
  _dropSession(token) {
    if (token) this._refused.add(token);
    if (this._session?.sessionToken === token) this._session = null;
    try {
      const stored = JSON.parse(this._storage.getItem(this._storageKey) || 'null');
      if (stored?.sessionToken === token) this._storage.removeItem(this._storageKey);
    } catch {
      // Nothing stored, or storage refused: nothing to drop.
    }
  }

  // === HTTP ===

  /**
   * One API call. Network errors, 5xx and 429 are retried with backoff,
   * never sooner than `Retry-After`; other 4xx are thrown at once. A
   * refused session is replaced once, as it can never succeed again.
   */
  async _request(method, path, { auth = false, body, retries } = {}) {
    const maxRetries = retries ?? this.options.maxRetries;
    let renewed = false;
    for (let attempt = 0; ; attempt++) {
      const token = auth ? (await this.session()).sessionToken : null;
      let error;
      try {
        const res = await this._send(method, path, token, body);
        if (res.ok) return res.status === 204 ? null : await res.json();
        error = await errorOf(res);
      } catch (e) {
        error = e instanceof VelvetError
          ? e
          : new VelvetError('NETWORK_ERROR', `cannot reach ${this.baseUrl}: ${e}`);
      }
      if (auth && error.status === 401 && !renewed && SESSION_CODES.has(error.code)) {
        renewed = true;
        this._dropSession(token);
        attempt--;
        continue;
      }
      if (!error.retryable || attempt >= maxRetries) throw error;
      const delayMs = this._retryDelay(attempt, error.retryAfterSeconds);
      this._emit('retry', { error, attempt: attempt + 1, delayMs });
      await sleep(delayMs);
    }
  }

  async _send(method, path, token, body) {
    const headers = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.options.requestTimeoutMs);
    try {
      return await this._fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort.signal,
        cache: 'no-store',
      });
    } finally {
      clearTimeout(timer);
    }
  }

  _retryDelay(attempt, retryAfterSeconds) {
    const { retryBaseMs, retryMaxMs } = this.options;
    if (retryAfterSeconds != null) {
      // Honour the server's pause, plus a little spread so that everyone
      // told the same thing does not come back in the same millisecond.
      return retryAfterSeconds * 1000 * (1 + Math.random() * 0.2);
    }
    return backoff(attempt, retryBaseMs, retryMaxMs);
  }

  async _enterExperience(id) {
    const path = `/v1/experiences/${seg(id)}/enter`;
    const entry = await this._request('POST', path, { auth: true });
    this._watched.experiences.add(id);
    this._track(entry.kind, entry);
    return entry;
  }

  async _queueCall(method, id, action) {
    const path = `/v1/queues/${seg(id)}/${action}`;
    const entry = await this._request(method, path, { auth: true });
    this._track('queue', entry);
    return entry;
  }

  async _drawCall(method, id, action) {
    const path = `/v1/draws/${seg(id)}/${action}`;
    const entry = await this._request(method, path, { auth: true });
    this._track('draw', entry);
    return entry;
  }

  async _leave(id) {
    const path = `/v1/queues/${seg(id)}/entry`;
    await this._request('DELETE', path, { auth: true });
    this._watched.queues.delete(id);
  }

  /** Watches an entry from now on, and emits what it already says. */
  _track(kind, entry) {
    if (kind === 'queue') {
      this._watched.queues.add(entry.queueId);
      this._applyQueue(entry);
    } else if (kind === 'draw') {
      this._watched.draws.add(entry.drawId);
      if (entry.isWinner !== undefined) this._applyDraw(entry);
    }
    if (this.options.realtime) this.connect();
    else this._startPolling();
  }

  // === What an entry means, from either source ===

  _applyQueue(entry) {
    const { queueId, state } = entry;
    if (state === 'waiting' || state === 'pre-queue') {
      const wait = entry.estimatedWaitSeconds ?? null;
      const payload = {
        queueId,
        state,
        position: entry.position ?? null,
        estimatedWait: wait,
        estimatedWaitSeconds: wait,
      };
      const signature = `${state}|${payload.position}|${wait}`;
      this._emitChange('queue:position-updated', `q ${queueId}`, signature, payload);
    } else if (state === 'admitted' && entry.handoffToken) {
      this._watched.queues.delete(queueId);
      const payload = {
        queueId,
        handoffToken: entry.handoffToken,
        expiresAt: entry.expiresAt ?? null,
      };
      this._emitChange('queue:access-granted', `q ${queueId}`, entry.handoffToken, payload);
    } else {
      // expired, redeemed or left: nothing more will come for this entry.
      this._watched.queues.delete(queueId);
      const payload = { queueId, state };
      this._emitChange('queue:entry-ended', `q ${queueId}`, state, payload);
    }
  }

  _applyDraw(result) {
    const { drawId, state } = result;
    if (state === 'pending' || state === undefined) return;
    const token = result.handoffToken ?? null;
    // Waitlisted entrants may still be promoted: keep watching them.
    if (state !== 'waitlisted') this._watched.draws.delete(drawId);
    const detail = {
      state,
      isWinner: Boolean(result.isWinner),
      handoffToken: token,
      expiresAt: result.expiresAt ?? null,
    };
    const payload = { drawId, ...detail, result: detail };
    this._emitChange('draw:completed', `d ${drawId}`, `${state}|${token}`, payload);
  }

  _applyExperience(update) {
    const { experienceId, state } = update;
    const announcement = update.announcement ?? null;
    const payload = { experienceId, state, announcement };
    const signature = `${state}|${announcement}`;
    this._emitChange('experience:updated', `e ${experienceId}`, signature, payload);
  }

  _onServerMessage(message) {
    switch (message.type) {
      case 'queue:position-updated':
        return this._applyQueue({ ...message, state: 'waiting' });
      case 'queue:access-granted':
        return this._applyQueue({ ...message, state: 'admitted' });
      case 'draw:completed':
        return this._applyDraw(message);
      case 'experience:updated':
        return this._applyExperience(message);
      case 'error':
        return this._emit('error', new VelvetError(message.code, message.message));
      default:
        // A newer server's message: ignored, so old clients keep working.
        return undefined;
    }
  }

  // === WebSocket ===

  /** Opens the live connection (done for you by the first `enter`). */
  connect() {
    this._closed = false;
    if (this._ws || this._reconnectTimer || this._opening) return;
    this._openSocket();
  }

  /** Closes the socket and stops polling; `connect()` starts again. */
  close() {
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._stopPolling();
    const ws = this._ws;
    this._ws = null;
    ws?.close(1000, 'client closed');
    this._setConnection('closed');
  }

  async _openSocket() {
    const Socket = this.options.WebSocket || globalThis.WebSocket;
    if (!Socket) return this._startPolling();
    this._opening = true;
    let session;
    try {
      session = await this.session();
    } catch (e) {
      this._emit('error', e);
      return this._socketDown();
    } finally {
      this._opening = false;
    }
    if (this._closed || this._ws) return undefined;
    let ws;
    try {
      ws = new Socket(socketUrl(this.baseUrl));
    } catch {
      return this._socketDown();
    }
    this._ws = ws;
    if (!this._degraded()) this._setConnection('connecting');
    this._wire(ws, session.sessionToken);
    return undefined;
  }

  _wire(ws, token) {
    const noReady = setTimeout(() => ws.close(4000, 'no ready'), this.options.readyTimeoutMs);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', sessionToken: token }));
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'ready') {
        clearTimeout(noReady);
        this._readyAt = Date.now();
        this._stopPolling();
        this._setConnection('live');
      } else if (message.type === 'error' && SESSION_CODES.has(message.code)) {
        // The server closes next; a fresh session is made on reconnect.
        this._dropSession(token);
      } else {
        this._onServerMessage(message);
      }
    };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      clearTimeout(noReady);
      if (this._ws !== ws) return;
      this._ws = null;
      if (!this._closed) this._socketDown(event.code);
    };
  }

  /** The socket is gone: poll meanwhile, and try again after a backoff. */
  _socketDown(code) {
    if (this._closed) return;
    const stable = this._readyAt && Date.now() - this._readyAt > this.options.stableAfterMs;
    // 1001: the node is shutting down; another will take us at once.
    if (stable || code === 1001) this._attempt = 0;
    this._readyAt = 0;
    this._startPolling();
    const { reconnectBaseMs, reconnectMaxMs } = this.options;
    const delay = backoff(this._attempt++, reconnectBaseMs, reconnectMaxMs);
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._openSocket();
    }, delay);
  }

  _reconnectNow() {
    if (this._closed || this._ws || this._opening || !this._reconnectTimer) return;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._openSocket();
  }

  // === HTTP polling, while the socket is down ===

  _degraded() {
    return this._connection === 'polling' || this._connection === 'offline';
  }

  _startPolling() {
    if (this._connection !== 'offline') this._setConnection('polling');
    if (this._pollTimer || this._polling) return;
    this._schedulePoll(0);
  }

  _stopPolling() {
    clearTimeout(this._pollTimer);
    this._pollTimer = null;
  }

  _schedulePoll(delayMs) {
    this._pollTimer = setTimeout(() => this._pollRound(), delayMs);
  }

  async _pollRound() {
    this._pollTimer = null;
    this._polling = true;
    let waitMs = this.options.pollIntervalMs * (0.8 + Math.random() * 0.4);
    try {
      await this._pollOnce();
      if (this._connection === 'offline') this._setConnection('polling');
    } catch (error) {
      const asked = error.retryAfterSeconds;
      if (asked != null) waitMs = Math.max(waitMs, asked * 1000);
      if (!error.retryable) this._emit('error', error);
      else if (this._connection === 'polling') this._setConnection('offline');
    } finally {
      this._polling = false;
    }
    if (this._degraded() && !this._closed) this._schedulePoll(waitMs);
  }

  async _pollOnce() {
    const once = { auth: true, retries: 0 };
    for (const id of [...this._watched.queues]) {
      const path = `/v1/queues/${seg(id)}/position`;
      const entry = await this._gone(this._request('GET', path, once));
      if (entry) this._applyQueue(entry);
      else this._watched.queues.delete(id);
    }
    for (const id of [...this._watched.draws]) {
      const path = `/v1/draws/${seg(id)}/result`;
      const result = await this._gone(this._request('GET', path, once));
      if (result) this._applyDraw(result);
      else this._watched.draws.delete(id);
    }
    for (const id of [...this._watched.experiences]) {
      const path = `/v1/experiences/${seg(id)}/status`;
      const status = await this._request('GET', path, { retries: 0 });
      this._applyExperience({ experienceId: id, ...status });
    }
  }

  /** `null` for an entry that no longer exists; other errors propagate. */
  async _gone(call) {
    try {
      return await call;
    } catch (e) {
      if (e.code === 'NOT_FOUND') return null;
      throw e;
    }
  }

  // === Browser signals ===

  _listenToBrowser() {
    const win = globalThis.window;
    if (!win?.addEventListener) return;
    // Back online, or back in view: no need to sit out the backoff.
    win.addEventListener('online', () => this._reconnectNow());
    globalThis.document?.addEventListener?.('visibilitychange', () => {
      if (document.visibilityState === 'visible') this._reconnectNow();
    });
    // Another tab replaced the session: follow it, on a fresh socket.
    win.addEventListener('storage', (event) => {
      if (event.key !== this._storageKey) return;
      const next = this._readStored();
      if (!next || next.sessionToken === this._session?.sessionToken) return;
      this._session = next;
      this._ws?.close(4001, 'session changed');
    });
  }
}

// === Helpers ===

function normaliseBase(baseUrl) {
  const origin = globalThis.location?.origin;
  const base = baseUrl || origin || '';
  if (!base) throw new TypeError('createClient needs a base URL outside a browser');
  return String(base).replace(/\/+$/, '');
}

function socketUrl(baseUrl) {
  return `${baseUrl.replace(/^http/, 'ws')}/v1/ws`;
}

function seg(id) {
  return encodeURIComponent(id);
}

function isRetryable(status) {
  return status === 0 || status === 429 || status >= 500;
}

/** Exponential backoff with "equal jitter": never zero, never a herd. */
function backoff(attempt, baseMs, maxMs) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function sleep(ms) {
  return new Promise((done) => setTimeout(done, ms));
}

async function resolve(value) {
  return typeof value === 'function' ? value() : value;
}

/** A session within a minute of its expiry is treated as gone. */
function expiresSoon(session) {
  const at = Date.parse(session.expiresAt);
  return Number.isFinite(at) && at - Date.now() < 60000;
}

function retryAfterOf(res, body) {
  const fromBody = body?.error?.retryAfterSeconds;
  if (typeof fromBody === 'number') return fromBody;
  const header = res.headers.get('retry-after');
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, (at - Date.now()) / 1000) : null;
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not the contract's JSON (a proxy's page, say): described by status.
  }
  const code = body?.error?.code || (isRetryable(res.status)
    ? 'SERVICE_UNAVAILABLE'
    : `HTTP_${res.status}`);
  const message = body?.error?.message || res.statusText;
  return new VelvetError(code, message, res.status, retryAfterOf(res, body));
}

/**
 * A one-table IndexedDB store, or null where there is none. Its
 * transactions are seen by every tab of the origin as soon as they
 * complete, which localStorage does not promise across processes.
 */
function sharedStore() {
  const idb = globalThis.indexedDB;
  if (!idb) return null;
  let opened;
  const db = () => {
    opened ??= new Promise((done, fail) => {
      const req = idb.open('velvet', 1);
      req.onupgradeneeded = () => req.result.createObjectStore('kv');
      req.onsuccess = () => done(req.result);
      req.onerror = () => fail(req.error);
    });
    return opened;
  };
  const run = async (mode, op) => {
    const tx = (await db()).transaction('kv', mode);
    const req = op(tx.objectStore('kv'));
    return new Promise((done, fail) => {
      tx.oncomplete = () => done(req.result);
      tx.onerror = () => fail(tx.error);
      tx.onabort = () => fail(tx.error);
    });
  };
  return {
    get: (key) => run('readonly', (store) => store.get(key)),
    set: (key, value) => run('readwrite', (store) => store.put(value, key)),
  };
}

/** localStorage when usable; memory otherwise (private modes, sandboxes). */
function pickStorage(given) {
  if (given) return given;
  try {
    const storage = globalThis.localStorage;
    const probe = 'velvet.probe';
    storage.setItem(probe, '1');
    storage.removeItem(probe);
    return storage;
  } catch {
    const memory = new Map();
    return {
      getItem: (k) => (memory.has(k) ? memory.get(k) : null),
      setItem: (k, v) => memory.set(k, String(v)),
      removeItem: (k) => memory.delete(k),
    };
  }
}

export default createClient;

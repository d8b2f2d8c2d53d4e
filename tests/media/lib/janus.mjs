// A small Janus client over the HTTP transport (the Janus "REST" API).
//
// Why HTTP and not WebSocket: it needs nothing but Node's fetch, every
// request has its own timeout, and the long poll makes event delivery easy
// to reason about in a test (one loop per session, bounded waits).  The
// WebSocket transport carries the same JSON messages; a test that needs it
// can reuse the event queue below with another carrier.
//
//   const session = await JanusSession.create(env.janusHttp);
//   const handle = await session.attach('janus.plugin.echotest');
//   const { data, jsep } = await handle.request({ audio: true }, offer);
//   const ev = await handle.waitForEvent(e => e.plugindata?.data?.publishers);
//   await session.destroy();
//
// Every wait is bounded; timeouts throw with what was being waited for.

import { randomBytes } from 'node:crypto';

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_EVENT_TIMEOUT_MS = 10_000;
// Janus answers a long poll after 30 s without events; wait a little longer.
const LONG_POLL_TIMEOUT_MS = 35_000;
// The stack's session_timeout is 60 s.
const KEEPALIVE_INTERVAL_MS = 25_000;

/** An error answered by Janus (core or plugin). */
export class JanusError extends Error {
  constructor(code, reason, response) {
    super(`Janus error ${code}: ${reason}`);
    this.name = 'JanusError';
    this.code = code;
    this.reason = reason;
    this.response = response;
  }
}

function transaction() {
  return randomBytes(9).toString('base64url');
}

async function postJson(url, body, timeoutMs) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    throw new Error(`POST ${url}: HTTP ${res.status}`);
  }
  return res.json();
}

function throwIfError(reply) {
  if (reply.janus === 'error') {
    throw new JanusError(reply.error?.code, reply.error?.reason, reply);
  }
  return reply;
}

/**
 * Events of one session, queued per handle, consumed by predicate.  An event
 * that no waiter wanted stays queued, so a test may wait for it later.
 */
class EventQueue {
  #events = [];
  #waiters = new Set();
  #closedError = null;

  push(event) {
    for (const waiter of this.#waiters) {
      if (waiter.match(event)) {
        this.#waiters.delete(waiter);
        waiter.resolve(event);
        return;
      }
    }
    this.#events.push(event);
  }

  /** Resolves with the first queued or future event matching `match`. */
  take(match, timeoutMs, what) {
    const i = this.#events.findIndex(match);
    if (i >= 0) {
      return Promise.resolve(this.#events.splice(i, 1)[0]);
    }
    if (this.#closedError) {
      return Promise.reject(this.#closedError);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (ev) => {
          clearTimeout(waiter.timer);
          resolve(ev);
        },
        reject: (err) => {
          clearTimeout(waiter.timer);
          reject(err);
        },
      };
      waiter.timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Events received and not yet taken (for assertions and debugging). */
  pending() {
    return [...this.#events];
  }

  close(error) {
    this.#closedError = error;
    for (const waiter of this.#waiters) {
      waiter.reject(error);
    }
    this.#waiters.clear();
  }
}

/** A Janus session: one long-poll loop, a keepalive timer, its handles. */
export class JanusSession {
  #pollAbort = new AbortController();
  #keepalive = null;
  #handles = new Map();
  #sessionEvents = new EventQueue();
  #pollLoop = null;

  /** @private use JanusSession.create */
  constructor(baseUrl, id, options) {
    this.baseUrl = baseUrl;
    this.id = id;
    this.url = `${baseUrl}/${id}`;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.destroyed = false;
  }

  /**
   * Creates a session on Janus at `baseUrl` (e.g. http://127.0.0.1:58088/janus)
   * and starts its event loop and keepalives.
   */
  static async create(baseUrl, options = {}) {
    const opts = { requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS, ...options };
    const reply = throwIfError(
      await postJson(
        baseUrl,
        { janus: 'create', transaction: transaction() },
        opts.requestTimeoutMs,
      ),
    );
    const session = new JanusSession(baseUrl, reply.data.id, opts);
    session.#pollLoop = session.#poll();
    session.#keepalive = setInterval(() => {
      session.send({ janus: 'keepalive' }).catch(() => {});
    }, KEEPALIVE_INTERVAL_MS);
    session.#keepalive.unref();
    return session;
  }

  /** Sends a request on this session and returns Janus' synchronous reply. */
  async send(body, url = this.url) {
    return throwIfError(
      await postJson(
        url,
        { transaction: transaction(), ...body },
        this.requestTimeoutMs,
      ),
    );
  }

  /** Attaches to a plugin (e.g. 'janus.plugin.videoroom'). */
  async attach(plugin) {
    const reply = await this.send({ janus: 'attach', plugin });
    const handle = new JanusHandle(this, plugin, reply.data.id);
    this.#handles.set(handle.id, handle);
    return handle;
  }

  /** Waits for a session-level event (no sender), e.g. 'timeout'. */
  waitForSessionEvent(match, timeoutMs = DEFAULT_EVENT_TIMEOUT_MS) {
    return this.#sessionEvents.take(match, timeoutMs, 'a session event');
  }

  async #poll() {
    while (!this.destroyed) {
      let events;
      try {
        const res = await fetch(`${this.url}?maxev=10`, {
          signal: AbortSignal.any([
            this.#pollAbort.signal,
            AbortSignal.timeout(LONG_POLL_TIMEOUT_MS),
          ]),
        });
        if (!res.ok) {
          throw new Error(`long poll: HTTP ${res.status}`);
        }
        events = await res.json();
      } catch (err) {
        if (this.destroyed) {
          return;
        }
        if (err.name === 'TimeoutError') {
          continue;
        }
        this.#fail(err);
        return;
      }
      for (const event of Array.isArray(events) ? events : [events]) {
        this.#dispatch(event);
      }
    }
  }

  #dispatch(event) {
    if (event.janus === 'keepalive') {
      return;
    }
    if (event.janus === 'error' && event.error?.code === 458) {
      // "No such session": Janus timed us out or the session was destroyed.
      this.#fail(new JanusError(458, event.error.reason, event));
      return;
    }
    const handle = event.sender ? this.#handles.get(event.sender) : null;
    if (handle) {
      handle.events.push(event);
    } else {
      this.#sessionEvents.push(event);
    }
  }

  #fail(err) {
    this.destroyed = true;
    clearInterval(this.#keepalive);
    for (const handle of this.#handles.values()) {
      handle.events.close(err);
    }
    this.#sessionEvents.close(err);
  }

  forget(handle) {
    this.#handles.delete(handle.id);
  }

  /** Destroys the session on Janus (best effort) and stops its loops. */
  async destroy() {
    if (this.destroyed) {
      return;
    }
    this.destroyed = true;
    clearInterval(this.#keepalive);
    try {
      await this.send({ janus: 'destroy' });
    } catch {
      // Janus may already have dropped the session; nothing to undo.
    }
    this.#pollAbort.abort();
    await this.#pollLoop;
    const closed = new Error('session destroyed');
    for (const handle of this.#handles.values()) {
      handle.events.close(closed);
    }
    this.#sessionEvents.close(closed);
  }
}

/** A handle attached to one plugin. */
export class JanusHandle {
  constructor(session, plugin, id) {
    this.session = session;
    this.plugin = plugin;
    this.id = id;
    this.url = `${session.url}/${id}`;
    this.events = new EventQueue();
  }

  /**
   * Sends a plugin message.  Returns the synchronous reply: `ack` for an
   * asynchronous request (then wait for the event), `success` with
   * plugindata for a synchronous one.
   */
  async message(body, jsep) {
    const msg = { janus: 'message', body };
    if (jsep) {
      msg.jsep = jsep;
    }
    const reply = await this.session.send(msg, this.url);
    if (reply.janus === 'success') {
      pluginError(reply);
    }
    return reply;
  }

  /**
   * Sends a plugin message and returns its result: the synchronous plugin
   * data, or the asynchronous event that answers it (matched by
   * transaction) as { data, jsep, event }.  A plugin "error" field throws.
   */
  async request(body, jsep, timeoutMs = DEFAULT_EVENT_TIMEOUT_MS) {
    const tx = transaction();
    const msg = { janus: 'message', body, transaction: tx };
    if (jsep) {
      msg.jsep = jsep;
    }
    const reply = await this.session.send(msg, this.url);
    let event = reply;
    if (reply.janus === 'ack') {
      event = await this.events.take(
        (e) => e.janus === 'event' && e.transaction === tx,
        timeoutMs,
        `the answer to ${JSON.stringify(body)} on ${this.plugin}`,
      );
    }
    const data = pluginError(event);
    return { data, jsep: event.jsep, event };
  }

  /** Waits for an event of this handle matching `match` (bounded). */
  waitForEvent(match, timeoutMs = DEFAULT_EVENT_TIMEOUT_MS, what = 'an event') {
    return this.events.take(match, timeoutMs, `${what} on ${this.plugin}`);
  }

  /** Waits for Janus' "webrtcup" (DTLS done, PeerConnection up). */
  waitForWebrtcUp(timeoutMs = DEFAULT_EVENT_TIMEOUT_MS) {
    return this.waitForEvent((e) => e.janus === 'webrtcup', timeoutMs, 'webrtcup');
  }

  /**
   * Waits for Janus' "media" event of a kind (optionally a mid) with
   * receiving true or false: Janus saw media start or stop arriving.
   */
  waitForMedia(type, receiving = true, timeoutMs = DEFAULT_EVENT_TIMEOUT_MS) {
    return this.waitForEvent(
      (e) => e.janus === 'media' && e.type === type && e.receiving === receiving,
      timeoutMs,
      `media ${type} receiving=${receiving}`,
    );
  }

  /** Sends trickle candidates; `null` signals end of candidates. */
  async trickle(candidate) {
    const body = candidate ? { candidate } : { candidate: { completed: true } };
    return this.session.send({ janus: 'trickle', ...body }, this.url);
  }

  /** Hangs up the PeerConnection but keeps the handle. */
  async hangup() {
    return this.session.send({ janus: 'hangup' }, this.url);
  }

  /** Detaches from the plugin. */
  async detach() {
    try {
      return await this.session.send({ janus: 'detach' }, this.url);
    } finally {
      this.session.forget(this);
      this.events.close(new Error('handle detached'));
    }
  }
}

/** Returns plugindata.data, throwing a JanusError for a plugin error. */
function pluginError(event) {
  const data = event.plugindata?.data;
  if (data && (data.error_code !== undefined || data.error !== undefined)) {
    throw new JanusError(data.error_code, data.error, event);
  }
  return data;
}

/** GET <base>/info: version, loaded plugins and transports. */
export async function janusInfo(baseUrl, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS) {
  const res = await fetch(`${baseUrl}/info`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    throw new Error(`GET ${baseUrl}/info: HTTP ${res.status}`);
  }
  return res.json();
}

// qs-client.js: Quantum Signals for browsers and Node on the official socket.io-client.
// An ES module with no build step and no dependency of its own: pass `io` (in Node,
// `import { io } from "socket.io-client"`) or load the client first so the global `io`
// exists (the page's vendored copy). The protocol is the gateway's (docs/delivery.md):
// every (re)connect presents the newest offset seen in the Socket.IO `auth` payload; the
// gateway replays what was missed, in order, then sends `recovery`.

const SIGNAL_EVENT = "new_signal";
const RECOVERY_EVENT = "recovery";
// "<epoch>:<ms>-<seq>" or a bare "<ms>-<seq>" from before epochs. [0-9], never \d, and
// each number at most 2^64-1: exactly what the gateway accepts, so a stored offset that
// passes here is never refused at connect.
const OFFSET = /^(?:([0-9a-z]{8}):)?([0-9]{1,20})-([0-9]{1,20})$/;
const MAX_PART = (1n << 64n) - 1n;

/** `{epoch, ms, seq}` (BigInts: the parts exceed 2^53), or null if not an offset. */
export function parseOffset(value) {
  const m = typeof value === "string" ? OFFSET.exec(value) : null;
  if (!m) return null;
  const ms = BigInt(m[2]);
  const seq = BigInt(m[3]);
  if (ms > MAX_PART || seq > MAX_PART) return null;
  return { epoch: m[1] ?? null, ms, seq };
}

/**
 * -1, 0 or 1 as offset `a` comes before, at or after `b` in one history epoch; NaN when
 * they cannot be ordered (different epochs, or not offsets). NaN, not null: every
 * comparison with NaN is false, whereas `null >= 0` is true.
 */
export function compareOffsets(a, b) {
  const x = parseOffset(a);
  const y = parseOffset(b);
  if (!x || !y || x.epoch !== y.epoch) return NaN;
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  if (x.seq !== y.seq) return x.seq < y.seq ? -1 : 1;
  return 0;
}

/** Whether `candidate` is the newer offset: another epoch always is (the history restarted). */
export function isNewerOffset(candidate, last) {
  const c = parseOffset(candidate);
  if (!c) return false;
  const l = parseOffset(last);
  return !l || c.epoch !== l.epoch || compareOffsets(candidate, last) > 0;
}

// Callers' exceptions must not unwind through socket.io-client's packet handling: rethrow
// them on their own, where the page's console or Node's default handler reports them.
function call(fn, value) {
  if (typeof fn !== "function") return;
  try {
    fn(value);
  } catch (err) {
    queueMicrotask(() => { throw err; });
  }
}

function loadOffset(storage, key) {
  try {
    const value = storage ? storage.getItem(key) : null;
    return parseOffset(value) ? value : null;
  } catch {
    return null; // storage refused (private mode, a broken file): start without it
  }
}

/**
 * Connect and keep receiving signals across disconnects. Options:
 * - `url`: the gateway (omit in a page to use its own origin; then set `socketOptions.path`)
 * - `io`: socket.io-client's `io` (default: the global one)
 * - `symbols`: an array, or a function returning one on every connect (optional)
 * - `token`: a JWT for a gateway with AUTH_REQUIRED, or a function returning one (or null)
 *   on every connect, so a new token is used by the next reconnect (optional)
 * - `offset`: resume after this offset (a valid offset in `storage` wins)
 * - `onSignal(signal)`: each signal once, never at or before the last offset of its epoch
 * - `onRecovery({complete, recovered, since, reason, epoch})`: after each resume, and when
 *   a live signal shows the history was lost (`reason: "epoch_changed"`); when `complete`
 *   is false, reload the history (`GET api/signals/latest`): signals may be missing
 * - `onStatus({state, reason?, attempt?, error?})`: state is "connected", "reconnecting",
 *   "refused" (retried with backoff) or "closed"
 * - `storage`: `localStorage` or any object with getItem/setItem, to keep the offset
 *   across runs under `storageKey` (default "quantum-signals.offset")
 * - `socketOptions`: merged into socket.io-client's options (path, transports, ...)
 * Returns `{socket, offset, advance(offset), close()}`.
 */
export function connectSignals(options = {}) {
  const io = options.io ?? globalThis.io;
  if (typeof io !== "function") {
    throw new TypeError("connectSignals: pass `io` from socket.io-client or load it first");
  }
  if (options.offset != null && !parseOffset(options.offset)) {
    throw new TypeError(`connectSignals: not an offset: ${JSON.stringify(options.offset)}`);
  }
  const storageKey = options.storageKey ?? "quantum-signals.offset";
  const storage = options.storage ?? null;
  const state = {
    last: loadOffset(storage, storageKey) ?? options.offset ?? null,
    resuming: false, // between a connect that presented an offset and its `recovery`
  };

  function remember(offset) {
    state.last = offset;
    try {
      if (storage) storage.setItem(storageKey, offset);
    } catch { /* a full or refused storage only loses the offset across runs */ }
  }

  function auth(cb) {
    // socket.io-client calls this on every connect and reconnect: always the newest offset.
    const payload = {};
    if (state.last) payload.offset = state.last;
    const symbols = typeof options.symbols === "function" ? options.symbols() : options.symbols;
    if (Array.isArray(symbols) && symbols.length) payload.symbols = [...symbols];
    const token = typeof options.token === "function" ? options.token() : options.token;
    if (typeof token === "string" && token) payload.token = token;
    state.resuming = state.last !== null;
    cb(payload);
  }

  const socket = openSocket(io, options.url, { ...options.socketOptions, auth });
  socket.on(SIGNAL_EVENT, (sig) => onSignal(state, sig, options, remember));
  socket.on(RECOVERY_EVENT, (info) => {
    state.resuming = false;
    call(options.onRecovery, info);
  });
  const retry = keepConnected(socket, options.onStatus);

  return {
    socket,
    get offset() { return state.last; },
    // For offsets of signals the caller got elsewhere (the history API). Moves forward
    // within the current epoch only, so an epoch change is still noticed on the socket,
    // and never during a resume: it would make the replayed gap look already delivered.
    advance(offset) {
      const next = parseOffset(offset);
      const last = parseOffset(state.last);
      if (!next || state.resuming) return false;
      if (last && (next.epoch !== last.epoch || compareOffsets(offset, state.last) <= 0)) {
        return false;
      }
      remember(offset);
      return true;
    },
    close() {
      retry.stop();
      socket.disconnect();
    },
  };
}

function openSocket(io, url, socketOptions) {
  const opts = {
    // Websocket first: no sticky sessions needed across replicas; tryAllTransports falls
    // back to long-polling where a proxy blocks websockets.
    transports: ["websocket", "polling"],
    tryAllTransports: true,
    // Signals are time-sensitive: retry at least every 3 s; the default jitter (0.5)
    // still spreads a reconnect storm after a replica restarts.
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
    ...socketOptions,
  };
  return url == null ? io(opts) : io(url, opts);
}

function onSignal(state, sig, options, remember) {
  const offset = sig !== null && typeof sig === "object" ? sig.offset : undefined;
  const pos = parseOffset(offset);
  if (pos) {
    const last = parseOffset(state.last);
    if (last && pos.epoch === last.epoch && compareOffsets(offset, state.last) <= 0) {
      return; // at or before what was already delivered: never go back
    }
    if (last && pos.epoch !== last.epoch && !state.resuming) {
      // Seen live: Redis lost the history; signals around the change may be missing.
      const since = state.last;
      call(options.onRecovery, {
        complete: false, recovered: 0, since, reason: "epoch_changed", epoch: pos.epoch,
      });
    }
    remember(offset);
  }
  // Signals without an offset (a plain PUBLISH by another publisher) have no position.
  call(options.onSignal, sig);
}

function keepConnected(socket, onStatus) {
  let timer = null;
  let refusals = 0; // consecutive refusals, for the backoff
  let stopped = false;
  function retryLater() {
    // The official client does not retry after a refused connect or a server-side
    // disconnect. Exponential with jitter, capped at 30 s: a refusal that persists (a
    // gateway that requires a token) must not become a request loop.
    const delay = Math.min(30000, 1000 * 2 ** refusals++) * (0.5 + Math.random());
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(() => socket.connect(), delay);
  }
  socket.on("connect", () => {
    clearTimeout(timer);
    refusals = 0;
    call(onStatus, { state: "connected" });
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") {
      call(onStatus, { state: "closed", reason });
      return;
    }
    call(onStatus, { state: "reconnecting", reason });
    if (reason === "io server disconnect") retryLater();
  });
  socket.io.on("reconnect_attempt", (attempt) => call(onStatus, { state: "reconnecting", attempt }));
  socket.on("connect_error", (err) => {
    if (socket.active) {
      call(onStatus, { state: "reconnecting", error: err.message });
    } else {
      call(onStatus, { state: "refused", error: err.message });
      retryLater();
    }
  });
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// node --test: connectSignals' bookkeeping, driven through a stand-in for socket.io-client's
// `io` (the real client against real gateways is tests/e2e/test_js_client.py). Covers what
// a real gateway never provokes: an older offset arriving, a resume racing `advance`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { connectSignals } from "../../services/gateway/http/static/qs-client.js";

function fakeIo() {
  const made = [];
  const io = (url, opts) => {
    const handlers = {};
    const managerHandlers = {};
    const socket = {
      url, opts, active: true, connected: false, auths: [],
      on: (event, fn) => { (handlers[event] ||= []).push(fn); },
      io: { on: (event, fn) => { (managerHandlers[event] ||= []).push(fn); } },
      fire: (event, data) => { for (const fn of handlers[event] || []) fn(data); },
      // What socket.io-client does on each (re)connect: ask for auth, then "connect".
      open: () => {
        opts.auth((payload) => socket.auths.push(payload));
        socket.connected = true;
        socket.fire("connect");
      },
      disconnect: () => { socket.connected = false; socket.fire("disconnect", "io client disconnect"); },
    };
    made.push(socket);
    return socket;
  };
  return { io, made };
}

function record(options = {}) {
  const { io, made } = fakeIo();
  const got = { signals: [], recoveries: [], statuses: [] };
  const handle = connectSignals({
    url: "gw", io,
    onSignal: (s) => got.signals.push(s.id),
    onRecovery: (r) => got.recoveries.push(r),
    onStatus: (s) => got.statuses.push(s.state),
    ...options,
  });
  return { handle, socket: made[0], got };
}

const sig = (id, offset) => ({ id, type: "BUY", price: 1, offset });

test("every connect presents the newest offset and the current symbols", () => {
  let symbols = ["BTC-USD"];
  const { handle, socket, got } = record({ symbols: () => symbols });
  socket.open();
  assert.deepEqual(socket.auths[0], { symbols: ["BTC-USD"] });
  socket.fire("new_signal", sig("a", "aaaaaaaa:5-0"));
  socket.fire("new_signal", sig("b", "aaaaaaaa:5-1"));
  symbols = [];
  socket.fire("disconnect", "transport close");
  socket.open();
  assert.deepEqual(socket.auths[1], { offset: "aaaaaaaa:5-1" });
  assert.equal(handle.offset, "aaaaaaaa:5-1");
  assert.deepEqual(got.statuses, ["connected", "reconnecting", "connected"]);
  assert.equal(socket.opts.transports[0], "websocket");
});

test("never delivers an offset at or before the last one of its epoch", () => {
  const { socket, got } = record({ offset: "aaaaaaaa:10-0" });
  socket.open();
  for (const [id, offset] of [
    ["old", "aaaaaaaa:9-5"], ["same", "aaaaaaaa:10-0"], ["new", "aaaaaaaa:10-1"],
    ["no-offset", undefined], ["again", "aaaaaaaa:10-1"], ["beyond-2^53", "aaaaaaaa:9007199254740993-0"],
    ["below-it", "aaaaaaaa:9007199254740992-0"],
  ]) socket.fire("new_signal", sig(id, offset));
  assert.deepEqual(got.signals, ["new", "no-offset", "beyond-2^53"]);
});

test("an epoch change seen live is reported before its signal; during a resume it is not", () => {
  const { socket, got } = record();
  socket.open();
  socket.fire("new_signal", sig("a", "aaaaaaaa:5-0"));
  socket.fire("new_signal", sig("b", "bbbbbbbb:1-0"));
  assert.deepEqual(got.recoveries, [
    { complete: false, recovered: 0, since: "aaaaaaaa:5-0", reason: "epoch_changed", epoch: "bbbbbbbb" },
  ]);
  assert.deepEqual(got.signals, ["a", "b"]);

  socket.open(); // resumes from bbbbbbbb:1-0; the gateway answers for the epoch itself
  const answer = { complete: false, recovered: 1, since: "bbbbbbbb:1-0", reason: "epoch_changed", epoch: "cccccccc" };
  socket.fire("new_signal", sig("c", "cccccccc:1-0"));
  socket.fire("recovery", answer);
  assert.deepEqual(got.recoveries.slice(1), [answer]);
});

test("advance moves forward within the epoch, never during a resume", () => {
  const { handle, socket, got } = record();
  assert.equal(handle.advance("aaaaaaaa:5-0"), true);
  socket.open(); // resuming from aaaaaaaa:5-0
  assert.equal(handle.advance("aaaaaaaa:9-0"), false, "would hide the replayed gap");
  socket.fire("new_signal", sig("gap", "aaaaaaaa:6-0"));
  socket.fire("recovery", { complete: true, recovered: 1 });
  assert.equal(handle.advance("aaaaaaaa:9-0"), true);
  assert.equal(handle.advance("aaaaaaaa:8-0"), false);
  assert.equal(handle.advance("bbbbbbbb:1-0"), false, "an epoch change is the socket's to see");
  assert.deepEqual(got.signals, ["gap"]);
});

test("storage: read at start (a valid one wins over offset), written on every new offset", () => {
  const items = new Map([["quantum-signals.offset", "aaaaaaaa:7-0"]]);
  const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v) };
  const { handle, socket } = record({ storage, offset: "aaaaaaaa:1-0" });
  assert.equal(handle.offset, "aaaaaaaa:7-0");
  socket.open();
  socket.fire("new_signal", sig("a", "aaaaaaaa:8-0"));
  assert.equal(items.get("quantum-signals.offset"), "aaaaaaaa:8-0");

  const broken = { getItem: () => { throw new Error("denied"); }, setItem: () => { throw new Error("full"); } };
  const other = record({ storage: broken, storageKey: "k" });
  other.socket.open();
  other.socket.fire("new_signal", sig("b", "aaaaaaaa:1-0"));
  assert.deepEqual(other.got.signals, ["b"], "a refusing storage changes nothing else");
  const garbage = record({ storage: { getItem: () => "junk", setItem() {} }, offset: "2-0" });
  assert.equal(garbage.handle.offset, "2-0");
});

test("refuses a bad offset and a missing io at once", () => {
  const { io } = fakeIo();
  assert.throws(() => connectSignals({ io, offset: "nope" }), /not an offset/);
  assert.throws(() => connectSignals({}), /pass `io`/);
});

test("a refusal is retried on our own; close stops the retries", async () => {
  const connects = [0, 0];
  const [kept, closed] = [record(), record()];
  for (const [i, { socket }] of [kept, closed].entries()) {
    socket.connect = () => { connects[i] += 1; };
    socket.active = false; // socket.io-client gave up: a refused connect
    socket.fire("connect_error", new Error("refused"));
  }
  closed.handle.close();
  await new Promise((resolve) => setTimeout(resolve, 1600)); // past the first retry (<= 1.5 s)
  assert.deepEqual(connects, [1, 0]);
  assert.deepEqual(kept.got.statuses, ["refused"]);
  assert.deepEqual(closed.got.statuses, ["refused", "closed"]);
});

// qs-client.js under Node with the official socket.io-client: print every callback as one
// JSON line on stdout ({"event": "signal" | "recovery" | "status", "data": ...}).
// Usage: node qs_stream.mjs <url> ['{"offset": ..., "symbols": [...], "storageFile": ...}']
import { readFileSync, writeFileSync } from "node:fs";

import { io } from "socket.io-client";

import { connectSignals } from "../../services/gateway/http/static/qs-client.js";

const [url, json = "{}"] = process.argv.slice(2);
const { offset, symbols, storageFile } = JSON.parse(json);
const print = (event, data) => process.stdout.write(JSON.stringify({ event, data }) + "\n");

// A localStorage-shaped object over one file: what a Node program would pass as `storage`.
const storage = storageFile && {
  getItem: () => { try { return readFileSync(storageFile, "utf8").trim(); } catch { return null; } },
  setItem: (_key, value) => writeFileSync(storageFile, value),
};

connectSignals({
  url, io, offset, symbols, storage,
  socketOptions: { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 500 },
  onSignal: (sig) => print("signal", sig),
  onRecovery: (info) => print("recovery", info),
  onStatus: (status) => print("status", status),
});
// The parent test owns our lifetime; stop if it goes away, and never outlive a test.
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();
setTimeout(() => process.exit(0), 120_000).unref();

// Load generator (dev-time only): N official socket.io-client connections over WebSocket.
//   node loadgen.js --urls http://127.0.0.1:8000[,http://...] --clients 1000 [--concurrency 200]
// Prints JSON lines on stdout; takes commands on stdin, one a line:
//   start <signals>  reset counters and start recording (signals: how many will be published)
//   count            print the deliveries recorded so far (and warm-up deliveries, seq -1)
//   report           print latency percentiles, delivery checks and this process's CPU use
//   quit             disconnect everything and exit
// Each "new_signal" payload carries `seq` (0..signals-1) and `ts` (publish time, epoch seconds).
"use strict";
const { io } = require("socket.io-client");
const readline = require("node:readline");
const { performance } = require("node:perf_hooks");

function parseArgs(argv) {
  const args = { urls: "", clients: 100, concurrency: 200, timeoutMs: 30000 };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    args[key] = key === "urls" ? argv[i + 1] : Number(argv[i + 1]);
  }
  args.urls = args.urls.split(",").filter(Boolean);
  return args;
}

const args = parseArgs(process.argv);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const nowS = () => (performance.timeOrigin + performance.now()) / 1000;
const MAX_SAMPLES = 8_000_000;

const clients = [];
let recording = false;
let signals = 0;
let latencies = new Float64Array(0);
let stats = null;
let cpuStart = null;
let disconnects = 0;
let warmups = 0;
// Per signal: the first and last client's latency (seconds), to see when a backlog forms.
let firstLat = new Float64Array(0);
let lastLat = new Float64Array(0);

function resetStats(expected) {
  signals = expected;
  const capacity = Math.min(MAX_SAMPLES, Math.max(1, expected * clients.length));
  latencies = new Float64Array(capacity);
  stats = { deliveries: 0, duplicates: 0, outOfOrder: 0, unexpected: 0, first: 0, last: 0 };
  for (const c of clients) {
    c.seen = new Uint8Array(expected);
    c.maxSeq = -1;
    c.unique = 0;
  }
  firstLat = new Float64Array(expected).fill(Infinity);
  lastLat = new Float64Array(expected).fill(-Infinity);
  disconnects = 0;
  cpuStart = process.cpuUsage();
  recording = true;
}

function onSignal(client, data) {
  const seq = data && data.seq;
  if (seq === -1) {
    warmups += 1; // warm-up signal: counted apart, never measured
    return;
  }
  if (!recording) return;
  const t = nowS();
  if (stats.deliveries < latencies.length) latencies[stats.deliveries] = t - data.ts;
  stats.deliveries += 1;
  if (stats.first === 0) stats.first = t;
  stats.last = t;
  if (!Number.isInteger(seq) || seq < 0 || seq >= signals) {
    stats.unexpected += 1;
    return;
  }
  if (client.seen[seq]) {
    stats.duplicates += 1;
    return;
  }
  client.seen[seq] = 1;
  client.unique += 1;
  const lat = t - data.ts;
  if (lat < firstLat[seq]) firstLat[seq] = lat;
  if (lat > lastLat[seq]) lastLat[seq] = lat;
  if (seq < client.maxSeq) stats.outOfOrder += 1;
  else client.maxSeq = seq;
}

function connectOne(url) {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: args.timeoutMs,
    });
    const client = { socket, seen: new Uint8Array(0), maxSeq: -1, unique: 0 };
    socket.on("new_signal", (data) => onSignal(client, data));
    socket.on("disconnect", () => {
      if (recording) disconnects += 1;
    });
    socket.once("connect", () => resolve(client));
    socket.once("connect_error", () => {
      socket.close();
      resolve(null);
    });
  });
}

async function connectAll() {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  async function worker() {
    while (next < args.clients) {
      const i = next++;
      const client = await connectOne(args.urls[i % args.urls.length]);
      if (client) clients.push(client);
      else failed += 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(args.concurrency, args.clients) }, worker));
  out({
    event: "connected",
    clients: clients.length,
    failed,
    seconds: (performance.now() - started) / 1000,
  });
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function report() {
  const cpu = process.cpuUsage(cpuStart);
  const n = Math.min(stats.deliveries, latencies.length);
  const sorted = latencies.slice(0, n).sort();
  const unique = clients.reduce((sum, c) => sum + c.unique, 0);
  const ms = (v) => (v === null ? null : v * 1000);
  out({
    event: "report",
    clients: clients.length,
    connected: clients.filter((c) => c.socket.connected).length,
    disconnects,
    deliveries: stats.deliveries,
    unique,
    expected: signals * clients.length,
    missing: signals * clients.length - unique,
    duplicates: stats.duplicates,
    out_of_order: stats.outOfOrder,
    unexpected: stats.unexpected,
    first_s: stats.first,
    last_s: stats.last,
    p50_ms: ms(percentile(sorted, 0.5)),
    p90_ms: ms(percentile(sorted, 0.9)),
    p99_ms: ms(percentile(sorted, 0.99)),
    max_ms: n ? ms(sorted[n - 1]) : null,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    // Per seq, ms, rounded to 0.1 (null: nobody got it).
    first_ms: Array.from(firstLat, (v) => (Number.isFinite(v) ? Math.round(v * 1e4) / 10 : null)),
    last_ms: Array.from(lastLat, (v) => (Number.isFinite(v) ? Math.round(v * 1e4) / 10 : null)),
  });
}

function quit() {
  recording = false;
  for (const c of clients) c.socket.close();
  setTimeout(() => process.exit(0), 200);
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === "start") {
    resetStats(Number(arg));
    out({ event: "started" });
  } else if (cmd === "count") {
    out({ event: "count", deliveries: recording ? stats.deliveries : 0, warmups });
  } else if (cmd === "report") {
    report();
  } else if (cmd === "quit") {
    quit();
  }
});
process.stdin.on("end", quit);
connectAll().catch((err) => {
  out({ event: "error", error: String(err) });
  process.exit(1);
});

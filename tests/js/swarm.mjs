// Many official socket.io-client connections in one process: each subscribes to the
// given symbols; on SIGTERM/stdin close prints one JSON summary of receive latencies
// (publish time `sent` in the payload -> receive) per phase (`phase` in the payload).
import { io } from "socket.io-client";

const [url, count, symbols] = process.argv.slice(2);
const latencies = {}; // phase -> ms[]
let connected = 0;

for (let i = 0; i < Number(count); i++) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  socket.on("connect", () => {
    socket.emit("subscribe", symbols.split(","), () => {
      connected += 1;
      if (connected === Number(count)) process.stdout.write(JSON.stringify({ ready: true }) + "\n");
    });
  });
  socket.on("new_signal", (sig) => {
    (latencies[sig.phase] ||= []).push(Date.now() - sig.sent * 1000);
  });
}

function summary() {
  const out = {};
  for (const [phase, values] of Object.entries(latencies)) {
    values.sort((a, b) => a - b);
    const at = (q) => values[Math.min(values.length - 1, Math.floor(q * values.length))];
    out[phase] = { n: values.length, p50: at(0.5), p99: at(0.99), max: values[values.length - 1] };
  }
  process.stdout.write(JSON.stringify({ summary: out }) + "\n");
  process.exit(0);
}
process.stdin.on("data", summary);
process.stdin.on("close", () => process.exit(0));
setTimeout(() => process.exit(1), 120_000);

// Reference gateway 2 (dev-time only, never shipped): Node socket.io 4 with the Redis adapter.
// Each replica subscribes to the signal channel and emits to its own clients only
// (io.local), the same exactly-once design as the Python gateway.
//   PORT=... REDIS_URL=redis://127.0.0.1:6379/0 node server.js
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const port = Number(process.env.PORT || 8000);
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379/0";
const channel = process.env.SIGNAL_CHANNEL || "quantum_signals";

async function main() {
  const httpServer = http.createServer((req, res) => {
    if (req.url === "/readyz") {
      res.writeHead(ready ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: ready ? "ready" : "not ready" }));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  let ready = false;
  const io = new Server(httpServer, { transports: ["websocket"], serveClient: false });
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  const signals = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect(), signals.connect()]);
  io.adapter(createAdapter(pub, sub, { key: `${channel}:socketio` }));
  io.on("connection", (socket) => socket.join("all"));
  await signals.subscribe(channel, (message) => {
    let data;
    try {
      data = JSON.parse(message);
    } catch {
      return;
    }
    io.local.emit("new_signal", data);
  });
  httpServer.listen(port, "127.0.0.1", () => {
    ready = true;
  });
  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit(), signals.quit()]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

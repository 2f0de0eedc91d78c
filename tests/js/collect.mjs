// Official socket.io-client: connect, print every event as one JSON line on stdout.
import { io } from "socket.io-client";

const [url, transports = "websocket"] = process.argv.slice(2);
const socket = io(url, { transports: transports.split(","), reconnectionDelay: 100 });
const print = (event, data) => process.stdout.write(JSON.stringify({ event, data }) + "\n");

socket.on("connect", () => print("connect", { id: socket.id }));
socket.on("disconnect", (reason) => print("disconnect", { reason }));
socket.on("new_signal", (data) => print("new_signal", data));
socket.on("system_message", (data) => print("system_message", data));
// The parent test owns our lifetime; stop if it goes away.
process.stdin.on("close", () => process.exit(0));
setTimeout(() => process.exit(0), 120_000);

"""Socket.IO gateway: relays signals from Redis to web clients."""

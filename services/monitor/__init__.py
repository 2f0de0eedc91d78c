"""Market monitor: reads market data, runs strategies, publishes new signals to Redis."""

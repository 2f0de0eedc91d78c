"""Code shared by the monitor and the gateway: the wire contract and the plumbing."""

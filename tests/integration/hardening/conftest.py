"""Secrets used by the hardening tests; real-looking so production validation accepts them."""

from __future__ import annotations

ADMIN_TOKEN = "adm-7f3e1c9b5a2d4e6f8091"
JWT_SECRET = "jwt-secret-1b9e5c7a3f2d4e6a8c0b1d3f5e7a9c2b"

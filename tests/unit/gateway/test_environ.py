"""What a connection keeps of its handshake environ (the rest is freed at connect)."""

from __future__ import annotations

from gateway.wire.environ import trim_environ


def test_only_the_diagnostic_keys_stay_in_the_same_dict() -> None:
    environ = {
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_ORIGIN": "https://signals.example",
        "HTTP_COOKIE": "session=secret",
        "asgi.scope": {"headers": []},
        "wsgi.input": object(),
    }
    same = environ
    trim_environ(environ)
    assert same == {"REMOTE_ADDR": "10.0.0.1", "HTTP_ORIGIN": "https://signals.example"}

"""What a ``REDIS_URL`` names, parsed and checked without touching the network.

Accepted forms:

- ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS), ``unix:///path``
- ``redis+sentinel://[user:password@]host:port,host:port,.../db/master``: Sentinel, in the
  form python-socketio's ``AsyncRedisManager`` understands; ``rediss+sentinel://...`` adds
  TLS to the sentinels and to the data nodes.

Error messages never include the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DIRECT_SCHEMES = {"redis": False, "rediss": True, "unix": False}  # scheme -> TLS
SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis URL names; ``sentinels`` is empty for a direct connection."""

    scheme: str
    tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sentinels: tuple[tuple[str, int], ...] = ()
    db: int = 0
    master: str | None = None
    #: The URL without credentials (sentinel form: python-socketio's ``redis+sentinel``).
    bare_url: str = ""


def parse_redis_url(url: str) -> RedisTarget:
    """Parse ``url`` or raise ``ValueError`` with a reason that never includes the password."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, secret = userinfo.partition(":")
    username, password = unquote(user) or None, unquote(secret) or None
    if scheme in DIRECT_SCHEMES:
        if scheme != "unix" and not hosts:
            raise ValueError("no host in REDIS_URL")
        try:
            _ = parts.port  # validates the port
        except ValueError:
            raise ValueError("REDIS_URL has an invalid port") from None
        bare = parts._replace(netloc=hosts).geturl()
        return RedisTarget(scheme, DIRECT_SCHEMES[scheme], username, password, bare_url=bare)
    if scheme in SENTINEL_SCHEMES:
        sentinels = tuple(_parse_sentinel(h) for h in hosts.split(","))
        db, master = _parse_sentinel_path(parts.path)
        if parts.query or parts.fragment:
            raise ValueError("a Sentinel REDIS_URL takes no ?query or #fragment")
        joined = ",".join(f"{h}:{p}" for h, p in sentinels)
        bare = f"redis+sentinel://{joined}/{db}/{master}"
        return RedisTarget(
            scheme,
            SENTINEL_SCHEMES[scheme],
            username,
            password,
            sentinels=sentinels,
            db=db,
            master=master,
            bare_url=bare,
        )
    known = ", ".join([*DIRECT_SCHEMES, *SENTINEL_SCHEMES])
    raise ValueError(f"REDIS_URL scheme must be one of {known}; got {scheme or 'none'!r}")


def _parse_sentinel(host_port: str) -> tuple[str, int]:
    host, sep, port = host_port.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"Sentinel address {host_port!r} is not host:port; expected "
            "redis+sentinel://host:port,host:port/<db>/<master>"
        )
    return host.strip("[]"), int(port)


def _parse_sentinel_path(path: str) -> tuple[int, str]:
    parts = [p for p in path.split("/") if p]
    if len(parts) != 2 or not parts[0].isdigit():
        raise ValueError(
            "a Sentinel REDIS_URL ends in /<db>/<master name>, e.g. "
            "redis+sentinel://s1:26379,s2:26379,s3:26379/0/mymaster"
        )
    return int(parts[0]), parts[1]

"""REDIS_URL forms, the security settings, and the one config both client kinds share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import socketio
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from common.redis import RedisConfig, create_redis
from common.redis_url import parse_redis_url
from common.settings import ServiceSettings, load_settings
from tests.support.settings import startup_error

SENTINEL_URL = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380,[::1]:26381/2/mymaster"


def settings(**env: Any) -> ServiceSettings:
    return ServiceSettings(**env)


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_direct_url_credentials_leave_the_url() -> None:
    target = parse_redis_url("rediss://gateway:p%40ss:w@redis.example:6380/1")
    assert (target.tls, target.username, target.password) == (True, "gateway", "p@ss:w")
    assert target.bare_url == "rediss://redis.example:6380/1"
    assert "p@ss" not in repr(target)


def test_sentinel_url_in_python_socketio_form() -> None:
    target = parse_redis_url(SENTINEL_URL.replace("//", "//app:pw@", 1))
    assert target.sentinels == (("127.0.0.1", 26379), ("127.0.0.1", 26380), ("::1", 26381))
    assert (target.db, target.master, target.password) == (2, "mymaster", "pw")
    assert (
        target.bare_url == "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380,::1:26381/2/mymaster"
    )
    assert parse_redis_url(SENTINEL_URL.replace("redis+", "rediss+")).tls


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://x", "scheme must be one of"),
        ("redis://", "no host"),
        ("redis://:hunter2@h:port/0", "invalid port"),
        ("redis+sentinel://:hunter2@h:26379/0", "/<db>/<master name>"),
        ("redis+sentinel://:hunter2@h:26379/mymaster", "/<db>/<master name>"),
        ("redis+sentinel://:hunter2@h,h2:26379/0/m", "is not host:port"),
        ("redis+sentinel://:hunter2@h:99999/0/m", "is not host:port"),
        ("redis+sentinel://h:1/0/m?ssl=1", r"no \?query"),
    ],
)
def test_bad_urls_say_why_without_the_password(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        parse_redis_url(url)
    assert "hunter2" not in str(info.value)


def test_config_moves_credentials_and_tls_into_options(tmp_path: Path, pem: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("k")
    config = RedisConfig.from_settings(
        settings(
            redis_url="rediss://gateway@redis:6380/0",
            redis_password="s3cret-value",
            redis_tls_ca_file=pem,
            redis_tls_cert_file=pem,
            redis_tls_key_file=key,
        )
    )
    assert config.url == "rediss://redis:6380/0"
    assert config.options["username"] == "gateway"
    assert config.options["password"] == "s3cret-value"
    assert config.options["ssl_ca_certs"] == str(pem)
    assert config.options["ssl_keyfile"] == str(key)
    assert config.options["ssl_check_hostname"] is True
    assert "s3cret" not in repr(config)


def test_sentinel_config_carries_tls_and_sentinel_password(pem: Path) -> None:
    config = RedisConfig.from_settings(
        settings(
            redis_url=SENTINEL_URL.replace("redis+", "rediss+"),
            redis_password="data-pw",
            redis_sentinel_password="sentinel-pw",
            redis_tls_ca_file=pem,
        )
    )
    assert config.url.startswith("redis+sentinel://")  # what python-socketio understands
    assert config.options["ssl"] is True
    sentinel = config.options["sentinel_kwargs"]
    assert sentinel["password"] == "sentinel-pw"
    assert sentinel["ssl"] is True and sentinel["ssl_ca_certs"] == str(pem)
    first = config.manager_options()
    first["sentinel_kwargs"]["password"] = "changed"
    assert config.manager_options()["sentinel_kwargs"]["password"] == "sentinel-pw"


def test_the_socketio_manager_and_our_client_get_the_same_connection(pem: Path) -> None:
    """No network: both build their pools lazily, so the pools can be compared."""
    config = RedisConfig.from_settings(
        settings(
            redis_url="rediss://app:pw@127.0.0.1:6380/3",
            redis_tls_ca_file=pem,
        )
    )
    manager = socketio.AsyncRedisManager(config.url, redis_options=config.manager_options())
    manager._redis_connect()
    ours = create_redis(config.url, **config.options)
    for pool in (manager.redis.connection_pool, ours.connection_pool):
        assert pool.connection_class is SSLConnection
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "pw", 3)
        assert kwargs["ssl_ca_certs"] == str(pem)


def test_the_socketio_manager_and_our_client_use_the_same_sentinels(pem: Path) -> None:
    config = RedisConfig.from_settings(
        settings(
            redis_url=SENTINEL_URL.replace("redis+", "rediss+"),
            redis_password="pw",
            redis_sentinel_password="spw",
            redis_tls_ca_file=pem,
        )
    )
    manager = socketio.AsyncRedisManager(config.url, redis_options=config.manager_options())
    manager._redis_connect()
    ours = create_redis(config.url, **config.options)
    for pool in (manager.redis.connection_pool, ours.connection_pool):
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.service_name == "mymaster"
        assert pool.connection_class is SentinelManagedSSLConnection
        assert pool.connection_kwargs["password"] == "pw"
        assert pool.connection_kwargs["db"] == 2
        sentinels = pool.sentinel_manager.sentinels
        assert len(sentinels) == 3
        assert sentinels[0].connection_pool.connection_kwargs["password"] == "spw"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_TLS_CA_FILE": "/nonexistent/ca.pem"}, "configuration error: REDIS_TLS_CA_FILE:"),
        ({"REDIS_URL": "redis+sentinel://a:1,b/0/m"}, "configuration error: REDIS_URL:"),
        ({"REDIS_URL": "redis+sentinel://a:1/0"}, "/<db>/<master name>"),
        ({"REDIS_URL": "redis://:pw@h/0", "REDIS_PASSWORD": "pw2"}, "not both"),
        ({"REDIS_SENTINEL_PASSWORD": "x"}, "needs a redis+sentinel://"),
    ],
)
def test_bad_redis_settings_fail_at_start_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    err = startup_error(monkeypatch, capsys, ServiceSettings, env)
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_tls_files_need_a_tls_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pem: Path
) -> None:
    monkeypatch.setenv("REDIS_TLS_CA_FILE", str(pem))
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings, [])
    assert "is not rediss://" in capsys.readouterr().err


def test_a_bad_redis_url_never_echoes_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://user:hunter2-secret@host:notaport/0")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings, [])
    err = capsys.readouterr().err
    assert "REDIS_URL" in err
    assert "hunter2" not in err

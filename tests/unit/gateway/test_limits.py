"""The per-connection event limiter and the frame checks (pure logic, fake clock)."""

from __future__ import annotations

import pytest

from gateway.edge.guard import frame_problem, payload_problem
from gateway.edge.limits import EventLimiter, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_then_flood_disconnects_once() -> None:
    clock = Clock()
    limiter = EventLimiter(rate_per_s=2, burst=3, disconnect_after=4, clock=clock)
    assert [limiter.check("a") for _ in range(4)] == [Verdict.ALLOW] * 3 + [Verdict.REFUSE]
    clock.now = 0.5  # one token back
    assert limiter.check("a") is Verdict.ALLOW
    verdicts = [limiter.check("a") for _ in range(5)]
    assert verdicts == [Verdict.REFUSE] * 2 + [Verdict.DISCONNECT] + [Verdict.REFUSE] * 2
    assert limiter.check("b") is Verdict.ALLOW  # buckets are per connection


def test_a_pause_that_refills_the_bucket_forgives_earlier_refusals() -> None:
    clock = Clock()
    limiter = EventLimiter(rate_per_s=1, burst=2, disconnect_after=3, clock=clock)
    for pause in (0.0, 10.0, 20.0):
        clock.now = pause
        verdicts = [limiter.check("a") for _ in range(4)]
        assert Verdict.DISCONNECT not in verdicts


@pytest.mark.parametrize(
    ("text", "data", "problem"),
    [
        ("40", None, None),
        ('42["subscribe",["BTC-USD"]]', None, None),
        ("3", None, None),
        ("", None, "malformed"),
        ("0", None, "malformed"),
        ("9", None, "malformed"),
        ("42[", None, "malformed"),
        ("42{}", None, "malformed"),
        ("44", None, "malformed"),
        ('451-["a",{"_placeholder":true,"num":0}]', None, "binary"),
        (None, b"\x00", "binary"),
    ],
)
def test_frame_problem(text: str | None, data: bytes | None, problem: str | None) -> None:
    assert frame_problem(text, data) == problem


def test_payload_problem() -> None:
    assert payload_problem(b'40\x1e42["subscribe",["X"]]') is None
    assert payload_problem(b"40\x1ex") == "malformed"
    assert payload_problem(b"bAAAA") == "binary"
    assert payload_problem(b"\xff") == "malformed"

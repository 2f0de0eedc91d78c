from __future__ import annotations

from common.redis import Backoff


def test_backoff_grows_is_capped_and_resets() -> None:
    backoff = Backoff(initial_s=0.1, max_s=5.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(0.05 <= d <= 5.0 for d in delays)
    assert delays[-1] >= 2.5  # at the cap, jitter keeps it in [cap/2, cap]
    backoff.reset()
    assert backoff.next_delay() <= 0.1

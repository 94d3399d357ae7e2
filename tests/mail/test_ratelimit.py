"""The shared send-rate limit, on a fake clock."""

from __future__ import annotations

import multiprocessing

from formafriend_scheduler.mail.ratelimit import RateLimiter


def test_sends_are_spaced_by_the_rate_across_limiters_sharing_a_slot() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))

    slot = multiprocessing.get_context("spawn").Value("d", 0.0)
    worker_a = RateLimiter(10, slot, monotonic=lambda: now[0], sleep=sleep)
    worker_b = RateLimiter(10, slot, monotonic=lambda: now[0], sleep=sleep)

    for limiter in (worker_a, worker_b, worker_a, worker_b):
        limiter.wait_turn()

    assert slept == [0.1, 0.2, 0.3]  # the first goes at once, then one every 100 ms


def test_zero_means_unlimited() -> None:
    slot = multiprocessing.get_context("spawn").Value("d", 0.0)
    limiter = RateLimiter(0, slot, sleep=lambda s: (_ for _ in ()).throw(AssertionError("slept")))
    for _ in range(100):
        limiter.wait_turn()

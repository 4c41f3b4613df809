"""Two promotions never interleave: the deploy lock is a real PostgreSQL advisory lock per model."""

from __future__ import annotations

import threading
import time

from include.retraining.release.promotion import deploy_lock


def test_a_second_promotion_of_the_same_model_waits_for_the_first(pg_dsn: str):
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with deploy_lock(pg_dsn, "credit_risk"):
            order.append("first in")
            held.set()
            time.sleep(0.8)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(5)
    started = time.monotonic()
    with deploy_lock(pg_dsn, "credit_risk"):
        order.append("second in")
        waited = time.monotonic() - started
    thread.join()
    assert order == ["first in", "first out", "second in"]
    assert waited >= 0.5


def test_promotions_of_different_models_do_not_wait_for_each_other(pg_dsn: str):
    held = threading.Event()
    release = threading.Event()

    def other_model() -> None:
        with deploy_lock(pg_dsn, "fraud"):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=other_model)
    thread.start()
    held.wait(5)
    started = time.monotonic()
    with deploy_lock(pg_dsn, "credit_risk"):
        waited = time.monotonic() - started
    release.set()
    thread.join()
    assert waited < 3.0  # blocked would mean waiting for the 5 s release

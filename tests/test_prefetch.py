"""runtime.prefetch: same items in the same order, produced ahead in a thread; errors and early stops."""

from __future__ import annotations

import threading
import time

import pytest

from ipslib.engine import runtime


def test_items_in_order_and_produced_ahead():
    produced = []

    def source():
        for i in range(5):
            produced.append(i)
            yield i

    it = runtime.prefetch(source())
    assert next(it) == 0
    time.sleep(0.2)  # the consumer "computes"; the producer fetches the next item meanwhile
    assert produced[:2] == [0, 1]
    assert list(it) == [1, 2, 3, 4]


def test_producer_error_is_raised_at_its_item():
    def source():
        yield 1
        raise KeyError("broken item")

    it = runtime.prefetch(source())
    assert next(it) == 1
    with pytest.raises(KeyError, match="broken item"):
        next(it)


def test_closing_early_stops_the_thread():
    it = runtime.prefetch(iter(range(10**9)))
    assert next(it) == 0
    it.close()
    time.sleep(0.3)
    assert not any(t.name == "ipslib-prefetch" and t.is_alive() for t in threading.enumerate())

"""The route controller's deduplicated work queue (pure: the clock is a parameter)."""

from __future__ import annotations

from graylane.operator.routes.queue import WorkQueue
from hypothesis import given, settings
from hypothesis import strategies as st


def drain(queue: WorkQueue[str], *, now: float) -> list[str]:
    out = []
    while (key := queue.pop(now=now)) is not None:
        out.append(key)
        queue.done(key, now=now)
    return out


def test_a_burst_of_adds_is_one_item_in_first_in_first_out_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(1000):
        for key in ("a", "b", "c"):
            queue.add(key, now=0.0)
    assert len(queue) == 3
    assert drain(queue, now=0.0) == ["a", "b", "c"]
    assert len(queue) == 0 and queue.next_due(now=0.0) is None


def test_a_busy_key_is_not_handed_out_twice_and_comes_back_once_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a", now=0.0)
    assert queue.pop(now=0.0) == "a"
    queue.add("a", now=0.0)
    queue.add("a", now=0.0)
    assert queue.pop(now=0.0) is None, "being worked on: not handed to a second worker"
    queue.done("a", now=0.0)
    assert queue.pop(now=0.0) == "a", "changed while busy: once more"
    queue.done("a", now=0.0)
    assert queue.pop(now=0.0) is None


def test_low_priority_keys_wait_behind_every_normal_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("upstream", now=0.0, low=True)
    queue.add("r1", now=0.0)
    queue.add("r2", now=0.0)
    assert drain(queue, now=0.0) == ["r1", "r2", "upstream"]
    queue.add("x", now=0.0, low=True)
    queue.add("x", now=0.0)  # a normal add of a low key promotes it
    queue.add("y", now=0.0)
    assert drain(queue, now=0.0) == ["x", "y"]
    queue.add("u", now=0.0, low=True)
    assert queue.pop(now=0.0, low=False) is None, "held back while the caller's low slots are taken"
    assert queue.next_due(now=0.0, low=False) is None, "nothing for that caller: it waits, it does not spin"
    assert queue.next_due(now=0.0) == 0.0
    assert queue.pop(now=0.0) == "u"


def test_a_delayed_key_waits_for_its_time_unless_added_again_now() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("retry", now=10.0, delay=5.0)
    assert queue.pop(now=14.9) is None
    assert queue.next_due(now=12.0) == 3.0
    assert queue.pop(now=15.0) == "retry"
    queue.done("retry", now=15.0)
    queue.add("soon", now=20.0, delay=30.0)
    queue.add("soon", now=21.0)
    assert queue.pop(now=21.0) == "soon"
    queue.done("soon", now=21.0)
    assert queue.next_due(now=100.0) is None, "the delayed copy was replaced, not kept"


def test_a_retry_scheduled_while_busy_waits_and_a_change_meanwhile_does_not() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a", now=0.0)
    assert queue.pop(now=0.0) == "a"
    queue.add("a", now=0.0, delay=1.0)  # the worker's own retry
    queue.done("a", now=0.0)
    assert queue.pop(now=0.5) is None
    assert queue.pop(now=1.0) == "a"
    queue.add("a", now=1.0, delay=1.0)  # a retry, then an event while still busy
    queue.add("a", now=1.1)
    queue.done("a", now=1.2)
    assert queue.pop(now=1.2) == "a", "the event does not wait for the retry"


def test_the_earliest_of_two_delays_wins() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a", now=0.0, delay=10.0)
    queue.add("a", now=0.0, delay=2.0)
    queue.add("a", now=0.0, delay=5.0)
    assert queue.next_due(now=0.0) == 2.0
    assert queue.pop(now=2.0) == "a"
    queue.done("a", now=2.0)
    assert queue.pop(now=20.0) is None


OPS = st.lists(
    st.tuples(st.sampled_from(["add", "later", "low", "pop", "done"]), st.integers(0, 4)), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_every_added_key_is_worked_on_after_it_was_added_and_never_twice_at_once(
    ops: list[tuple[str, int]],
) -> None:
    queue: WorkQueue[int] = WorkQueue()
    busy: set[int] = set()
    pending: set[int] = set()  # added since it was last handed out
    now = 0.0
    for op, key in ops:
        now += 0.5
        if op in ("add", "later", "low"):
            queue.add(key, now=now, delay=3.0 if op == "later" else 0.0, low=op == "low")
            pending.add(key)
        elif op == "pop":
            got = queue.pop(now=now)
            if got is not None:
                assert got not in busy
                busy.add(got)
                pending.discard(got)
        elif key in busy:
            busy.discard(key)
            queue.done(key, now=now)
    for key in list(busy):
        queue.done(key, now=now)
    now += 10.0
    while (got := queue.pop(now=now)) is not None:
        pending.discard(got)
        queue.done(got, now=now)
    assert not pending, "an added key was lost"
    assert len(queue) == 0

"""The background publisher (``shared.events.publishing.after_commit``) against a publish function of
our own: every id submitted goes through a round, in submission order, rounds take what arrived
meanwhile, a failing round does not stop the thread, the queue is bounded, and drain waits."""

import threading
import uuid

import pytest

from shared.events.publishing import after_commit
from shared.events.publishing.after_commit import BackgroundPublisher


class Rounds:
    """The publish function: records each round; ``gate`` (when set) holds a round until released."""

    def __init__(self, fail_first: bool = False) -> None:
        self.rounds: list[list[uuid.UUID]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.fail_first = fail_first

    def __call__(self, ids: list[uuid.UUID]) -> None:
        self.rounds.append(list(ids))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail_first and len(self.rounds) == 1:
            raise RuntimeError("sink exploded")


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_ids_from_many_threads_are_all_published_each_once_in_submission_order_per_thread():
    rounds = Rounds()
    publisher = BackgroundPublisher(rounds)
    submitted: dict[int, list[uuid.UUID]] = {t: ids(50) for t in range(8)}

    def submit(t: int) -> None:
        for one in submitted[t]:
            publisher.submit([one])

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert publisher.drain(10)
    published = [one for r in rounds.rounds for one in r]
    assert sorted(published) == sorted(one for t in submitted.values() for one in t)
    position = {one: i for i, one in enumerate(published)}
    for t in submitted.values():  # one request thread's commits leave in the order it made them
        assert [position[one] for one in t] == sorted(position[one] for one in t)


def test_a_round_takes_everything_that_arrived_while_the_previous_one_ran():
    rounds = Rounds()
    rounds.gate = threading.Event()
    publisher = BackgroundPublisher(rounds)
    first, second, third = ids(1), ids(2), ids(3)
    publisher.submit(first)
    assert rounds.entered.wait(10)
    publisher.submit(second)
    publisher.submit(third)
    assert not publisher.drain(0.05)  # a round is held: not drained
    rounds.gate.set()
    assert publisher.drain(10)
    assert rounds.rounds == [first, second + third]


def test_a_round_is_at_most_max_round_ids():
    rounds = Rounds()
    rounds.gate = threading.Event()
    publisher = BackgroundPublisher(rounds, max_round=4)
    publisher.submit(ids(1))
    assert rounds.entered.wait(10)
    queued = ids(10)
    publisher.submit(queued)
    rounds.gate.set()
    assert publisher.drain(10)
    assert rounds.rounds[1:] == [queued[:4], queued[4:8], queued[8:]]


def test_a_failing_round_does_not_stop_the_thread():
    rounds = Rounds(fail_first=True)
    publisher = BackgroundPublisher(rounds)
    first = ids(2)
    publisher.submit(first)
    assert publisher.drain(10)
    later = ids(3)
    publisher.submit(later)
    assert publisher.drain(10)
    assert rounds.rounds == [first, later]


def test_past_the_bound_new_ids_are_left_to_the_sweep_not_queued():
    rounds = Rounds()
    rounds.gate = threading.Event()
    publisher = BackgroundPublisher(rounds, max_queued=5)
    held = ids(1)
    publisher.submit(held)
    assert rounds.entered.wait(10)
    kept, refused = ids(5), ids(3)
    publisher.submit(kept[:3])
    publisher.submit(kept[3:] + refused)  # room for two of these five
    assert publisher.left_to_sweep == 3
    rounds.gate.set()
    assert publisher.drain(10)
    assert rounds.rounds == [held, kept]


def test_the_setting_decides_between_before_the_answer_and_the_background(monkeypatch):
    from shared.events.publishing import relay  # noqa: PLC0415
    from shared.settings import reset_settings  # noqa: PLC0415

    sync_calls: list[list[uuid.UUID]] = []
    monkeypatch.setattr(relay, "publish_committed", lambda batch: sync_calls.append(list(batch)))
    queued: list[list[uuid.UUID]] = []
    monkeypatch.setattr(after_commit, "background", lambda: type("B", (), {"submit": lambda _s, batch: queued.append(batch)})())

    monkeypatch.setenv("PUBLISH_IN_BACKGROUND", "false")
    reset_settings()
    first = ids(2)
    after_commit.publish_after_commit(first)
    monkeypatch.setenv("PUBLISH_IN_BACKGROUND", "true")
    reset_settings()
    second = ids(1)
    after_commit.publish_after_commit(second)
    monkeypatch.undo()
    reset_settings()
    assert sync_calls == [first] and queued == [second]


@pytest.mark.parametrize("timeout", [0.0, 0.05])
def test_drain_gives_up_at_its_timeout_while_a_round_runs(timeout):
    rounds = Rounds()
    rounds.gate = threading.Event()
    publisher = BackgroundPublisher(rounds)
    publisher.submit(ids(1))
    assert rounds.entered.wait(10)
    assert publisher.drain(timeout) is False
    rounds.gate.set()
    assert publisher.drain(10) is True

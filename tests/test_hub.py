from __future__ import annotations

import asyncio

import pytest

from api.app import _keepalive
from api.filters import EventFilter
from api.hub import Hub, LiveEvent

ALICE, BOB, CAROL = "GALICE", "GBOB", "GCAROL"


class Connection:
    """A subscriber's link (api.hub.Link) that records what the hub asks of it."""

    def __init__(self, room: bool = True) -> None:
        self.room = room
        self.written: list[bytes] = []
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True

    def over(self, now: float) -> bool:
        return False

    def write_now(self, data: bytes) -> bool:
        if self.room:
            self.written.append(data)
        return self.room


def event(n: int, kind: str = "stream.withdrawn", stream_id: int | None = 1,
          parties: frozenset[str] = frozenset({ALICE, BOB})) -> LiveEvent:
    return LiveEvent(id=f"{n:019d}-0000000000", kind=kind, stream_id=stream_id, parties=parties,
                     frame=f"frame {n}".encode())


def test_each_subscriber_gets_what_it_selects_once_in_order() -> None:
    hub = Hub(client_buffer=100)
    everything = hub.subscribe(EventFilter(everything=True))
    stream_one = hub.subscribe(EventFilter(streams=frozenset({1})))
    carol = hub.subscribe(EventFilter(users=frozenset({CAROL})))
    created = hub.subscribe(EventFilter(types=frozenset({"stream.created"})))
    # selected by stream and by address at once: still one copy of each event
    both = hub.subscribe(EventFilter(streams=frozenset({1}), users=frozenset({ALICE})))
    narrowed = hub.subscribe(EventFilter(users=frozenset({ALICE}), types=frozenset({"stream.created"})))
    every_created = hub.subscribe(EventFilter(everything=True, types=frozenset({"stream.created"})))
    hub.publish([
        event(1),
        event(2, kind="stream.created", stream_id=2, parties=frozenset({CAROL, ALICE})),
        event(3, kind="protocol.initialized", stream_id=None, parties=frozenset({CAROL})),
    ])
    assert everything.take() == [b"frame 1", b"frame 2", b"frame 3"]
    assert stream_one.take() == [b"frame 1"]
    assert carol.take() == [b"frame 2", b"frame 3"]
    assert created.take() == [b"frame 2"]
    assert both.take() == [b"frame 1", b"frame 2"]
    assert narrowed.take() == [b"frame 2"]
    assert every_created.take() == [b"frame 2"]
    assert hub.high_water == event(3).id
    assert hub.stats.events_delivered == 3 + 1 + 2 + 1 + 2 + 1 + 1


def test_a_user_restricted_subscriber_sees_only_events_naming_them() -> None:
    hub = Hub(client_buffer=100)
    bob = hub.subscribe(EventFilter(everything=True, visible_to=BOB))
    hub.publish([event(1), event(2, parties=frozenset({CAROL})), event(3, parties=frozenset({BOB}))])
    assert bob.take() == [b"frame 1", b"frame 3"]


def test_a_restricted_subscriber_to_everything_costs_nothing_for_events_of_others() -> None:
    """Filed under its address, not visited for every event to be turned away."""
    visited: list[str] = []

    def render(live: LiveEvent) -> bytes:
        visited.append(live.id)
        return live.frame

    hub = Hub(client_buffer=100)
    bob = hub.subscribe(EventFilter(everything=True, visible_to=BOB), render)
    typed = hub.subscribe(EventFilter(types=frozenset({"stream.withdrawn"}), visible_to=BOB), render)
    hub.publish([event(n, parties=frozenset({CAROL})) for n in range(1, 101)] + [event(101)])
    assert bob.take() == typed.take() == [b"frame 101"]
    assert visited == [event(101).id] * 2
    assert not hub._everything and not hub._by_type, "filed under BOB only"
    hub.unsubscribe(bob)
    hub.unsubscribe(typed)
    assert hub.connections == 0 and not hub._by_user


def test_a_full_queue_drops_its_subscriber_and_no_other() -> None:
    hub = Hub(client_buffer=2)
    slow = hub.subscribe(EventFilter(everything=True))
    slow.link = link = Connection()
    fast = hub.subscribe(EventFilter(everything=True))
    hub.publish([event(1), event(2)])
    assert fast.take() == [b"frame 1", b"frame 2"]
    hub.publish([event(3)])
    assert slow.closed_reason is not None and "too slowly" in slow.closed_reason
    assert link.aborted
    assert hub.stats.clients_dropped == 1
    hub.publish([event(4)])
    assert fast.take() == [b"frame 3", b"frame 4"]
    assert hub.connections == 1


def test_unsubscribing_leaves_no_trace_in_the_indexes() -> None:
    hub = Hub(client_buffer=10)
    subscribers = [hub.subscribe(EventFilter(streams=frozenset({1, 2}), users=frozenset({ALICE}))),
                   hub.subscribe(EventFilter(everything=True)),
                   hub.subscribe(EventFilter(everything=True, types=frozenset({"stream.created"})))]
    for subscriber in subscribers:
        hub.unsubscribe(subscriber)
        hub.unsubscribe(subscriber)  # twice is harmless
    assert hub.connections == 0
    assert not hub._by_stream and not hub._by_user and not hub._by_type and not hub._everything and not hub._whole
    assert sum(hub.stats.connections_by_kind.values()) == 0


async def test_an_idle_connection_gets_a_publishs_frames_in_one_write_and_a_busy_one_through_its_queue() -> None:
    hub = Hub(client_buffer=10)
    links = {"idle": Connection(), "busy": Connection(), "full": Connection(room=False)}
    subscribers = {name: hub.subscribe(EventFilter(everything=True)) for name in links}
    for name, subscriber in subscribers.items():
        subscriber.link = links[name]
    written = {name: link.written for name, link in links.items()}
    idle_wait = subscribers["idle"].wakeup()  # waiting with nothing queued
    full_wait = subscribers["full"].wakeup()  # waiting, but its client's buffer has no room
    hub.publish([event(1), event(2)])
    assert written["idle"] == [b"frame 1frame 2"]
    assert not idle_wait.done() and subscribers["idle"].take() == []  # its task slept through it
    # not waiting (its task is writing): queued, in order, for the task
    assert written["busy"] == [] and subscribers["busy"].take() == [b"frame 1", b"frame 2"]
    assert full_wait.done() and subscribers["full"].take() == [b"frame 1", b"frame 2"]
    assert hub.stats.events_delivered == 6


def test_an_event_a_subscribers_render_fails_on_drops_that_subscriber_once_and_no_other(
        caplog: pytest.LogCaptureFixture) -> None:
    def render(live: LiveEvent) -> bytes:
        if live.id == event(2).id:
            raise ValueError("a row this dialect cannot shape")
        return b"rendered " + live.frame

    hub = Hub(client_buffer=100)
    failing = [hub.subscribe(EventFilter(everything=True), render) for _ in range(3)]
    for subscriber in failing:
        subscriber.link = Connection()
    plain = hub.subscribe(EventFilter(everything=True))
    hub.publish([event(1), event(2), event(3)])
    assert plain.take() == [b"frame 1", b"frame 2", b"frame 3"]
    assert hub.high_water == event(3).id
    assert hub.connections == 1
    assert all(s.closed_reason is not None and "could not be rendered" in s.closed_reason for s in failing)
    assert all(s.link.aborted for s in failing)  # type: ignore[union-attr]
    assert len([r for r in caplog.records if "could not be rendered" in r.getMessage()]) == 1
    # the event before went out, none after: the client resumes from before the one it could not have
    assert all(s.take() == [b"rendered frame 1"] for s in failing)


def test_after_close_all_a_new_subscriber_is_closed_at_once() -> None:
    """A stream still replaying when the server shuts down goes live into a closed hub: it ends, with a
    retry hint, rather than keep the server waiting."""
    hub = Hub(client_buffer=100)
    before = hub.subscribe(EventFilter(everything=True))
    hub.close_all("the server is shutting down; reconnect to resume")
    after = hub.subscribe(EventFilter(streams=frozenset({1})))
    assert before.closed_reason == after.closed_reason == "the server is shutting down; reconnect to resume"
    assert hub.connections == 0
    hub.publish([event(1)])
    assert after.take() == []


async def test_a_failing_sweep_is_logged_and_the_heartbeats_go_on(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(Hub):
        def sweep_over(self, now: float) -> int:
            if not swept:
                swept.append(now)
                raise RuntimeError("a bug in the sweep")
            return super().sweep_over(now)

    swept: list[float] = []
    hub = Failing(client_buffer=100)
    subscriber = hub.subscribe(EventFilter(everything=True))
    task = asyncio.create_task(_keepalive(hub, heartbeat_interval=0.05))
    try:
        async with asyncio.timeout(5):
            while len(subscriber.frames) < 2:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
    assert [r.getMessage() for r in caplog.records if r.exc_info] == [
        "the sweep of finished streams or the heartbeat failed; trying again"]

"""The in-process fan-out: live events to the subscribers that want them.

Subscribers are indexed by what they select (everything, a type, a stream, an address), so an
event costs work only for the subscribers it goes to, never a scan of every connection. Each event
arrives already serialized; its bytes are shared by every subscriber, and the subscribers of everything
share a whole page's, joined once (at 10,000 of them, 3 ms of the hub's time a page rather than 25).
Each subscriber has a bounded queue: one that stops reading is dropped when its queue is full (it
resumes by id) and never slows the others.

`high_water` is the id of the last event published. A subscriber that replays history from the
database switches to live delivery only when its replay has reached `high_water`, with no await in
between, so nothing falls between replay and live and nothing arrives twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from api.filters import EventFilter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LiveEvent:
    """An event as the hub hands it out: `frame` for today's subscribers; subscribers with a `render`
    make their own frame from `row` (and may keep it in `rendered`, for the next such subscriber)."""

    id: str
    kind: str
    stream_id: int | None
    parties: frozenset[str]
    frame: bytes
    row: Mapping[str, Any] | None = None
    rendered: bytes | None = None


class Link(Protocol):
    """A subscriber's connection, reached past the server's own interface: one reference per
    subscriber, as there may be tens of thousands."""

    def abort(self) -> None:
        """Close the connection at once, even while a write to it is blocked."""

    def over(self, now: float) -> bool:
        """Whether the stream is over at `now` (the loop's clock): the client has gone, or the stream's
        lifetime or its access token has run out."""

    def write_now(self, data: bytes) -> bool:
        """Write to the client at once; False when that cannot be done now (the client's buffer is
        full, the stream is over)."""


class Subscriber:
    """One connection's queue of frames; `wakeup()` says when there is something to send or the
    subscriber is closed (`closed_reason` then says why). Kept small, as there may be tens of
    thousands: a list and one future at a time, no asyncio.Event and its waiter deque."""

    __slots__ = ("selected", "frames", "limit", "waiter", "closed_reason", "link", "render")

    def __init__(self, selected: EventFilter, limit: int,
                 render: Callable[[LiveEvent], bytes | None] | None = None) -> None:
        self.selected = selected
        # Makes this subscriber's frame of an event (None: the event is not sent); None: the event's `frame`.
        self.render = render
        self.frames: list[bytes] = []
        self.limit = limit
        self.waiter: asyncio.Future[None] | None = None
        self.closed_reason: str | None = None
        # The connection itself, where the server lets the hub reach it (set by the SSE endpoint).
        self.link: Link | None = None

    def offer(self, frame: bytes) -> bool:
        """Queue a frame and send it; False when the queue is full."""
        if not self.queue(frame):
            return False
        self.flush()
        return True

    def queue(self, frame: bytes) -> bool:
        """Queue a frame to go with the next `flush`; False when the queue is full."""
        if len(self.frames) >= self.limit:
            return False
        self.frames.append(frame)
        return True

    def flush(self) -> None:
        """Send what is queued. While the connection waits idle (its queue was empty, nothing is being
        written) the frames go straight to the client in one write: waking the connection's task to
        write them costs several times more, which at 10,000 clients is the difference between tens and
        hundreds of milliseconds. Otherwise, or when the client's buffer is full, the task is woken."""
        frames = self.frames
        if frames and self.write_if_idle(frames[0] if len(frames) == 1 else b"".join(frames)):
            self.frames = []
            return
        self._wake()

    def write_if_idle(self, data: bytes) -> bool:
        """Write `data` straight to the client if the connection waits idle and its buffer has room."""
        return self.waiter is not None and self.link is not None and self.link.write_now(data)

    def wakeup(self) -> asyncio.Future[None]:
        """Done when there is something to send or the subscriber is closed. A plain future, not a
        coroutine: an idle connection waits without a frame of its own."""
        waiter = asyncio.get_running_loop().create_future()
        if self.frames or self.closed_reason is not None:
            waiter.set_result(None)
        else:
            self.waiter = waiter
        return waiter

    def take(self) -> list[bytes]:
        frames, self.frames = self.frames, []
        return frames

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


@dataclass
class HubStats:
    events_delivered: int = 0  # frames of the live feed queued or written to subscribers
    events_replayed: int = 0  # frames read from the table for clients resuming (api.sse)
    clients_dropped: int = 0
    connections_by_kind: Counter[str] = field(default_factory=Counter)


class Hub:
    def __init__(self, client_buffer: int) -> None:
        self.client_buffer = client_buffer
        self.high_water = ""
        self.stats = HubStats()
        # Subscribers to everything as it is published (no type or visibility filter, no frames of their
        # own): a page goes to each of them as one payload, joined once. The rest of `all=true` in _everything.
        self._whole: set[Subscriber] = set()
        self._everything: set[Subscriber] = set()
        self._by_type: dict[str, set[Subscriber]] = {}
        self._by_stream: dict[int, set[Subscriber]] = {}
        self._by_user: dict[str, set[Subscriber]] = {}
        self._subscribers: set[Subscriber] = set()
        self.closed_reason: str | None = None  # set by close_all

    @property
    def connections(self) -> int:
        return len(self._subscribers)

    def subscribe(self, selected: EventFilter,
                  render: Callable[[LiveEvent], bytes | None] | None = None) -> Subscriber:
        """A live subscriber for `selected`; it receives every event published from now on, as `render`
        makes its frames (by default the event's `frame`)."""
        subscriber = Subscriber(selected, self.client_buffer, render)
        if self.closed_reason is not None:
            subscriber.close(self.closed_reason)
            return subscriber
        self._subscribers.add(subscriber)
        self.stats.connections_by_kind[selected.kind()] += 1
        for index, keys in self._placement(selected):
            for key in keys:
                index.setdefault(key, set()).add(subscriber)
        if selected.everything and selected.visible_to is None:
            (self._whole if render is None and not selected.types else self._everything).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers:
            return
        self._subscribers.discard(subscriber)
        self.stats.connections_by_kind[subscriber.selected.kind()] -= 1
        self._whole.discard(subscriber)
        self._everything.discard(subscriber)
        for index, keys in self._placement(subscriber.selected):
            for key in keys:
                members = index.get(key)
                if members is not None:
                    members.discard(subscriber)
                    if not members:
                        del index[key]

    def _placement(self, selected: EventFilter) -> list[tuple[dict, Iterable]]:
        """The indexes a subscriber is filed under (one entry per key it selects by)."""
        if selected.visible_to is not None and not (selected.streams or selected.users):
            return [(self._by_user, (selected.visible_to,))]  # a restricted token sees its address's events only
        if selected.everything:
            return []
        if selected.streams or selected.users:
            return [(self._by_stream, selected.streams), (self._by_user, selected.users)]
        return [(self._by_type, selected.types)]

    def publish(self, events: Iterable[LiveEvent]) -> None:
        """Hand each event to the subscribers that want it, in order."""
        page = list(events)
        touched: list[Subscriber] = []  # subscribers whose queues were empty and now are not
        overflowing: list[Subscriber] = []
        unrendered: set[Subscriber] = set()
        delivered = self._publish_whole(page, touched, overflowing) if page else 0
        for event in page:
            targets: Iterable[Subscriber] = self._everything
            picked = self._by_type.get(event.kind)
            narrow: set[Subscriber] = set()
            if event.stream_id is not None and (by_stream := self._by_stream.get(event.stream_id)):
                narrow |= by_stream
            for party in event.parties:
                if by_user := self._by_user.get(party):
                    narrow |= by_user
            for group in (targets, picked or (), narrow):
                for subscriber in group:
                    if unrendered and subscriber in unrendered:
                        continue  # nothing after an event it could not have: it resumes from before that
                    selected = subscriber.selected
                    if selected.types and event.kind not in selected.types:
                        continue
                    if selected.visible_to is not None and selected.visible_to not in event.parties:
                        continue
                    if subscriber.render is None:
                        frame = event.frame
                    else:
                        try:
                            rendered = subscriber.render(event)
                        except Exception:
                            # One event a dialect cannot render must not stop live delivery to the rest.
                            if not unrendered:  # once per page, not per subscriber
                                log.exception("event %s could not be rendered for a live subscriber; the "
                                              "subscribers it fails for are dropped and resume by id", event.id)
                            unrendered.add(subscriber)
                            continue
                        if rendered is None:
                            continue
                        frame = rendered
                    if subscriber.queue(frame):
                        delivered += 1
                        if len(subscriber.frames) == 1:
                            touched.append(subscriber)
                    else:
                        overflowing.append(subscriber)
            self.high_water = event.id
        for subscriber in touched:  # each sent once, with every frame of these events
            subscriber.flush()
        for subscriber in overflowing:
            if subscriber in self._subscribers:
                self.stats.clients_dropped += 1
                self.drop(subscriber, "the client read too slowly; it resumes from its last event id")
        for subscriber in unrendered:
            if subscriber in self._subscribers:
                self.drop(subscriber, "an event could not be rendered; it resumes from its last event id")
        self.stats.events_delivered += delivered

    def _publish_whole(self, events: list[LiveEvent], touched: list[Subscriber],
                       overflowing: list[Subscriber]) -> int:
        """The page to the subscribers of everything as published: written at once to those that wait
        idle (however long the page: their clients' buffers had room; the listener publishes at most
        half a queue at a time anyway), queued for the others. How many frames went out or were queued."""
        if not self._whole:
            return 0
        frames = [event.frame for event in events]
        payload = frames[0] if len(frames) == 1 else b"".join(frames)
        delivered = 0
        for subscriber in self._whole:
            if not subscriber.frames and subscriber.write_if_idle(payload):
                delivered += len(frames)
                continue
            was_empty = not subscriber.frames
            for frame in frames:
                if not subscriber.queue(frame):
                    overflowing.append(subscriber)
                    break
                delivered += 1
            if was_empty and subscriber.frames:
                touched.append(subscriber)
        return delivered

    def drop(self, subscriber: Subscriber, reason: str) -> None:
        """Stop feeding `subscriber` and cut its connection, even if a write to it is blocked."""
        self.unsubscribe(subscriber)
        subscriber.close(reason)
        if subscriber.link is not None:
            subscriber.link.abort()

    def sweep_over(self, now: float) -> int:
        """Close the subscribers whose streams are over (the client has gone, or the stream's time is up),
        without waiting for a write to fail or an event to wake them: their connections then end, with a
        last frame where the client is still there, and free their slots. How many."""
        over = [s for s in self._subscribers if s.link is not None and s.link.over(now)]
        for subscriber in over:
            self.unsubscribe(subscriber)
            subscriber.close("the client left, or the stream's time is up")
        return len(over)

    def broadcast(self, frame: bytes) -> None:
        """A frame for every subscriber, whatever it selects (heartbeats)."""
        for subscriber in self._subscribers:
            subscriber.offer(frame)

    def close_all(self, reason: str) -> None:
        """Close every subscriber, and those that subscribe from now on (streams still replaying): the
        server is shutting down."""
        self.closed_reason = reason
        for subscriber in list(self._subscribers):
            self.unsubscribe(subscriber)
            subscriber.close(reason)

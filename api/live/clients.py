"""Live clients: messages encoded once, subscriptions, and the bounded queue of each client.

A client's queue never makes its producer wait. When it is full the oldest message is
lost, the client is told how many it lost (the next message it takes is `dropped`), and
a ranks subscription that lost a snapshot or diff gets a fresh snapshot, since the diffs
after a lost one cannot be applied. A client that keeps losing messages for
`evict_after_s` without once catching up is closed with the reason.

Replies to the client's own messages (`subscribed`, `pong`, `error`, ...) take a path of
their own, ahead of the data and never lost: what bounds them is the rate at which the
client may send (`api.live.protocol`), not the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from api.errors import ApiPackageError

_encode = msgspec.json.Encoder().encode

RANKS_TYPES = frozenset({"snapshot", "diff"})
"""Message types of a ranks subscription, which a loss invalidates."""


class Message:
    """One update as sent: a type, a JSON body encoded once, and a sequence number.

    The same message object goes to every client that receives it; its SSE frame is
    built once, its WebSocket frame is the body with the subscription id spliced in.
    """

    __slots__ = ("_sse", "body", "seq", "type")

    def __init__(self, type: str, body: bytes, seq: int | None = None) -> None:
        self.type = type
        self.body = body
        self.seq = seq
        self._sse: bytes | None = None

    def sse(self) -> bytes:
        """The Server-Sent Events frame: `id` (the seq), `event` (the type), `data` (the body)."""
        if self._sse is None:
            head = b"" if self.seq is None else b"id: %d\r\n" % self.seq
            self._sse = b"%sevent: %s\r\ndata: %s\r\n\r\n" % (head, self.type.encode(), self.body)
        return self._sse

    def ws(self, sub_id: str | None) -> str:
        """The WebSocket text frame: `{"type", "id", ...body}`."""
        head = b'{"type":"%s"' % self.type.encode()
        if sub_id is not None:
            head += b',"id":' + _encode(sub_id)
        rest = self.body[1:]
        return (head + (b"," + rest if rest != b"}" else rest)).decode()


def control(type: str, **fields: Any) -> Message:
    """A one-off message (an error, a pong, a confirmation) with these body fields."""
    return Message(type, _encode(fields))


class Refusal:
    """Client messages refused in a row for exceeding the rate limit: one `error` tells
    how many (`rate_limited`, `count`), however many there were."""

    __slots__ = ("count", "message")

    def __init__(self, message: str) -> None:
        self.message = message
        self.count = 1

    def encode(self) -> Message:
        """The `error` message."""
        return control("error", code="rate_limited", message=self.message, count=self.count)


class ClientClosed(ApiPackageError):
    """The hub closed this client; `code` says why (`too_slow`, `rate_limited`,
    `shutdown`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False, slots=True)
class Subscription:
    """One channel a client follows: a ranks view, a candle stream or signals.

    `target` is what the channel's owner tracks it by (the shared view of a filter, the
    candle stream, the signal match); `needs_snapshot` is set when a ranks subscription
    lost an update.
    """

    id: str
    client: Client
    channel: str
    target: Any = None
    needs_snapshot: bool = False


@dataclass(slots=True)
class LiveStats:
    """Counters of live delivery, for /metrics."""

    drops: int = 0
    evictions: int = 0
    evaluations: int = 0
    evaluation_s: float = 0.0
    diffs: int = 0
    diff_rows: int = 0
    last_diff_rows: int = 0
    snapshots: int = 0


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """How every client's queue behaves.

    Attributes:
        limit: Messages a queue holds.
        evict_after_s: How long a client may keep losing messages before it is closed.
        stats: Where losses and evictions are counted.
        resync: Called with a ranks subscription that lost an update (it needs a snapshot).
        clock: Monotonic seconds.
    """

    limit: int
    evict_after_s: float
    stats: LiveStats
    resync: Callable[[Subscription], None]
    clock: Callable[[], float]


class Client:
    """One connected SSE stream or WebSocket: its subscriptions and its bounded queue.

    Args:
        kind: `sse` or `ws`.
        policy: The queue's size and loss policy.
    """

    def __init__(self, kind: str, policy: QueuePolicy) -> None:
        self.kind = kind
        self.policy = policy
        self.subscriptions: dict[str, Subscription] = {}
        self.queue: deque[tuple[Subscription | None, Message]] = deque()
        self.replies: deque[Message | Refusal] = deque()
        self.dropped = 0
        self.behind_since: float | None = None
        self.closed: ClientClosed | None = None
        self._ready = asyncio.Event()

    def put(self, sub: Subscription | None, message: Message) -> None:
        """Queue a message; never waits. A full queue loses its oldest message first."""
        if self.closed is not None:
            return
        if len(self.queue) >= self.policy.limit:
            self._drop_oldest()
            if self.closed is not None:
                return
        if sub is not None and sub.needs_snapshot and message.type == "diff":
            # A diff that follows a lost one cannot be applied; the snapshot comes next.
            self.dropped += 1
            self.policy.stats.drops += 1
            return
        self.queue.append((sub, message))
        self._ready.set()

    def reply(self, message: Message) -> None:
        """Queue a reply to the client's own message: sent before any queued data, in the
        order of the replies, and never lost."""
        if self.closed is None:
            self.replies.append(message)
            self._ready.set()

    def refuse(self, message: str) -> None:
        """Count a client message refused for exceeding the rate limit; consecutive ones
        are answered by one `rate_limited` error, in order with the other replies.

        Args:
            message: The error's text (the limit, what to do).
        """
        if self.closed is not None:
            return
        last = self.replies[-1] if self.replies else None
        if isinstance(last, Refusal):
            last.count += 1
        else:
            self.replies.append(Refusal(message))
            self._ready.set()

    async def next(self) -> list[tuple[Subscription | None, Message]]:
        """Wait for messages and take all that are queued: the replies first, then the
        data, each oldest first.

        After a loss the first data message is `dropped`, with the number lost as `count`.

        Raises:
            ClientClosed: When the hub closed this client.
        """
        while not self.queue and not self.replies and self.closed is None:
            self._ready.clear()
            await self._ready.wait()
        if self.closed is not None:
            raise self.closed
        taken: list[tuple[Subscription | None, Message]] = [
            (None, item if isinstance(item, Message) else item.encode()) for item in self.replies
        ]
        self.replies.clear()
        if self.dropped:
            taken.append((None, control("dropped", count=self.dropped)))
            self.dropped = 0
        taken.extend(self.queue)
        self.queue.clear()
        self.behind_since = None
        return taken

    def discard(self, sub: Subscription) -> None:
        """Forget the queued messages of one subscription."""
        self.queue = deque(item for item in self.queue if item[0] is not sub)

    def close(self, code: str, message: str) -> None:
        """Close this client: its reader gets `ClientClosed` instead of further messages."""
        if self.closed is None:
            self.closed = ClientClosed(code, message)
            self.queue.clear()
            self.replies.clear()
            self._ready.set()

    def evict(self, message: str) -> None:
        """Close this client for being too slow (`too_slow`), counted once in
        `LiveStats.evictions` whichever way it was found out: it kept losing updates, or
        one send to it took longer than it may lag."""
        if self.closed is None:
            self.policy.stats.evictions += 1
            self.close("too_slow", message)

    def _drop_oldest(self) -> None:
        sub, message = self.queue.popleft()
        lost = 1
        if sub is not None and message.type in RANKS_TYPES:
            # The diffs after a lost one cannot be applied: drop them too, send a snapshot.
            before = len(self.queue)
            self.discard(sub)
            lost += before - len(self.queue)
            sub.needs_snapshot = True
            self.policy.resync(sub)
        self.dropped += lost
        stats = self.policy.stats
        stats.drops += lost
        now = self.policy.clock()
        if self.behind_since is None:
            self.behind_since = now
        elif now - self.behind_since >= self.policy.evict_after_s:
            self.evict(f"too slow: lost updates for {now - self.behind_since:.0f} s")

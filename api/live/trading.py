"""Live paper trading: commands to the engine, its answers and account views back, and
the `trading` streams of each account.

The API sends a command to ``tr.orders.v1`` (keyed by the account id) and waits for the
engine's answer: the first event on ``tr.events.v1`` carrying the command's id, or, for
a command whose answer is several events (cancel all, close positions, open, reset),
every event up to the account view that follows them on ``tr.accounts.v1``. Both
topics are consumed once per process on a thread (`TradingFeed`), like the market
feed, and handed to `TradingStreams` on the event loop, which also keeps each
account's latest view (what `GET /api/v1/paper/accounts/{id}` answers) and fans out
to the account's subscribers through the hub's bounded client queues.

Messages of a ``trading`` subscription (bodies as JSON, decimals as strings, the wire
forms of `schemas.trading`):

- ``order``: ``{"order": Order}`` when an order is accepted, rejected, amended,
  canceled, triggered, expired or fills;
- ``fill``: ``{"fill": Fill}`` for each execution (before the order it changed);
- ``account``: ``{"account": AccountView}``, the latest view at once on subscribing, then
  each view the engine publishes (after every event, and at least once a second while a
  price that values the account moves);
- ``funding``: ``{"funding": FundingPaid}`` and ``liquidation``: ``{"liquidation":
  Liquidated}``, the events as the engine logged them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from api.errors import Timeout, Unavailable
from api.live.clients import Message as LiveMessage
from api.live.clients import Subscription
from api.live.feed import FeedThread, assign_new, data_records
from api.settings import ApiAppSettings
from runtime.kafka import producer_config
from schemas import topics
from schemas.trading import (
    AccountEvent,
    AccountView,
    Command,
    CommandRefused,
    FundingPaid,
    Liquidated,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderUpdated,
    encode,
    event_decoder,
    view_decoder,
)

logger = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 5.0
"""How long a request waits for the engine's answer before it is a 504."""

VIEWS_BACKLOG = 20_000
"""Records read back from the end of each tr.accounts.v1 partition at start: the engine
republishes every account's view every 10 s, so a restarted API knows every account's
state at once."""

NOT_RUNNING = "paper trading is not running in this API process (it has no Kafka)"

TradingRecord = AccountEvent | AccountView


def _message(type: str, name: bytes, value: Any, seq: int) -> LiveMessage:
    return LiveMessage(type, b'{"%s":%s}' % (name, encode(value)), seq)


@dataclass(eq=False, slots=True)
class _Pending:
    """A command waiting for its answer."""

    account_id: str
    answer: Callable[[AccountEvent], bool] | None
    """The event that answers the command; None: every event up to the view after them."""
    done: asyncio.Future[None]
    events: list[AccountEvent] = field(default_factory=list)

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class TradingStreams:
    """Every account's latest view, the commands waiting for an answer, and the
    subscribers of each account's trading stream.

    Args:
        sender: Sends a command to the engine (None until a producer is open: then
            `send` answers 503).
        timeout_s: How long `send` waits for the engine's answer.
    """

    def __init__(
        self,
        sender: Callable[[Command], None] | None = None,
        *,
        timeout_s: float = REPLY_TIMEOUT_S,
    ) -> None:
        self.sender = sender
        self.timeout_s = timeout_s
        self.views: dict[str, AccountView] = {}
        self._last_seq: dict[str, int] = {}
        self._held: dict[str, AccountView] = {}
        self._pending: dict[str, _Pending] = {}
        self._subs: dict[str, set[Subscription]] = {}
        self._seq: dict[str, int] = {}

    @property
    def running(self) -> bool:
        """Whether commands can be sent."""
        return self.sender is not None

    def view(self, account_id: str) -> AccountView | None:
        """The account's latest view, None before the engine published one."""
        return self.views.get(account_id)

    async def send(
        self, command: Command, answer: Callable[[AccountEvent], bool] | None = None
    ) -> list[AccountEvent]:
        """Send a command and wait for its answer.

        Args:
            command: The command (its `command_id` fresh).
            answer: Which of the events it causes answers it: the wait ends with the
                first for which this is true (a refusal always ends it). None: every
                event it causes, up to the account view after them (which `view` then
                returns).

        Returns:
            The events, oldest first (at least one).

        Raises:
            Unavailable: Without a producer, or when Kafka refuses the command.
            Timeout: When no event answered within `timeout_s` (the command may still be
                applied later).
        """
        if self.sender is None:
            raise Unavailable(NOT_RUNNING)
        pending = _Pending(command.account_id, answer, asyncio.get_running_loop().create_future())
        self._pending[command.command_id] = pending
        try:
            try:
                self.sender(command)
            except (BufferError, KafkaException) as exc:
                logger.warning("paper command %s not sent: %s", command.command_id, exc)
                raise Unavailable("the paper engine cannot be reached now; try again") from exc
            try:
                await asyncio.wait_for(pending.done, self.timeout_s)
            except TimeoutError:
                if not pending.events:
                    raise Timeout(
                        f"the paper engine did not answer within {self.timeout_s:g} s; the "
                        "command may still be applied: look the account up before repeating it"
                    ) from None
        finally:
            del self._pending[command.command_id]
        return pending.events

    # -- the feed ------------------------------------------------------------------------

    def deliver(self, records: Sequence[TradingRecord]) -> None:
        """Take records from the feed (events and views, each topic's in order): answer
        the commands waiting for them and tell the accounts' subscribers."""
        for record in records:
            if isinstance(record, AccountView):
                self._view(record)
            else:
                self._event(record)
        for pending in self._pending.values():
            if pending.answer is None and pending.events and self._settled(pending):
                pending.finish()

    def _settled(self, pending: _Pending) -> bool:
        """Whether every event of a command has come: a view after its first event is
        here, and so is every event that view counts."""
        view = self.views.get(pending.account_id)
        if view is None or view.seq < pending.events[-1].seq:
            return False
        return self._last_seq.get(pending.account_id, 0) >= view.seq

    def _event(self, event: AccountEvent) -> None:
        account = event.account_id
        self._last_seq[account] = max(self._last_seq.get(account, 0), event.seq)
        pending = self._pending.get(event.command_id) if event.command_id else None
        if pending is not None and not pending.done.done():
            pending.events.append(event)
            answer = pending.answer
            if isinstance(event, CommandRefused) or (answer is not None and answer(event)):
                pending.finish()  # a refusal is the whole answer: nothing follows it
        if account in self._subs:
            self._tell(account, event)
        if account in self._held:
            self._catch_up(account)

    def _tell(self, account: str, event: AccountEvent) -> None:
        """Send a subscribed account's event as its stream's messages."""
        if isinstance(event, OrderFilled):
            self._send(account, "fill", event.fill)
            self._send(account, "order", event.order)
        elif isinstance(event, OrderAccepted | OrderRejected | OrderUpdated):
            self._send(account, "order", event.order)
        elif isinstance(event, FundingPaid):
            self._send(account, "funding", event)
        elif isinstance(event, Liquidated):
            self._send(account, "liquidation", event)

    def _catch_up(self, account: str) -> None:
        """Release the view held back for the events that have now come."""
        held = self._held.get(account)
        if held is not None and held.seq <= self._last_seq[account]:
            del self._held[account]
            self._view(held)

    def _view(self, view: AccountView) -> None:
        account = view.account_id
        if view.seq > self._last_seq.get(account, view.seq):
            # Views and events come on two topics, so a view may overtake the events it
            # counts: it waits for them, and a subscriber never sees the account ahead
            # of its orders and fills. (Before any event of the account has come, e.g.
            # the views read back at start, there is nothing to wait for.)
            held = self._held.get(account)
            if held is None or (view.seq, view.time_us) >= (held.seq, held.time_us):
                self._held[account] = view
            return
        known = self.views.get(account)
        if known is not None and (view.seq, view.time_us) < (known.seq, known.time_us):
            return  # an older view (the backlog, a republish overtaken): the newer stands
        self.views[account] = view
        if account in self._subs:
            self._send(account, "account", view)

    def _send(self, account: str, type: str, value: Any) -> None:
        seq = self._seq[account] = self._seq.get(account, 0) + 1
        message = _message(type, type.encode(), value, seq)
        for sub in self._subs[account]:
            sub.client.put(sub, message)

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, sub: Subscription, account_id: str) -> None:
        """Follow an account (whose owner the caller checked); its latest view, if any,
        comes at once."""
        self._subs.setdefault(account_id, set()).add(sub)
        sub.target = account_id
        view = self.views.get(account_id)
        if view is not None:
            seq = self._seq[account_id] = self._seq.get(account_id, 0) + 1
            sub.client.put(sub, _message("account", b"account", view, seq))

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop following; an account nobody follows is forgotten here."""
        account: str | None = sub.target
        subs = self._subs.get(account) if account is not None else None
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[account]  # type: ignore[arg-type]
            self._seq.pop(account, None)  # type: ignore[arg-type]


class TradingFeed(FeedThread):
    """Consumes ``tr.events.v1`` (from its end) and ``tr.accounts.v1`` (from
    `views_backlog` records before its end) on a thread of its own, handing decoded
    records to the event loop in batches.

    Every partition is assigned explicitly (no consumer group), at offsets resolved when
    it is assigned, so an answer produced after that is never missed. A topic that does
    not exist yet is assigned once it appears.

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        trading_topics: The topics.
        deliver: Called on the event loop with each non-empty batch.
        views_backlog: Records of each accounts partition read back from its end.
        poll_s: Longest wait for records before checking for a stop or new topics.
    """

    def __init__(
        self,
        bootstrap: str,
        trading_topics: topics.TradingTopics,
        deliver: Callable[[list[TradingRecord]], None],
        *,
        views_backlog: int = VIEWS_BACKLOG,
        poll_s: float = 0.05,
    ) -> None:
        super().__init__(bootstrap, deliver, poll_s, batch_size=1_000)
        self.topics = trading_topics
        self._backlog = views_backlog
        self.assigned: set[str] = set()
        self.ready = threading.Event()
        """Set once both topics are assigned."""
        self._decoders: dict[str, Callable[[bytes], TradingRecord]] = {
            trading_topics.events: event_decoder().decode,
            trading_topics.accounts: view_decoder().decode,
        }

    thread_name = "trading-feed"

    def _housekeep(self, consumer: Consumer, now: float) -> None:
        if not self.ready.is_set():
            self._assign_new(consumer)

    def _following(self) -> bool:
        return bool(self.assigned)

    def _take(self, messages: list[Any]) -> list[TradingRecord] | None:
        return self._decode(messages) or None

    def _decode(self, messages: list[Any]) -> list[TradingRecord]:
        batch: list[TradingRecord] = []
        for message in data_records(messages, "trading feed"):
            try:
                batch.append(self._decoders[message.topic()](message.value() or b""))
            except msgspec.DecodeError as exc:
                self._undecodable(message, exc)
        return batch

    def _assign_new(self, consumer: Consumer) -> None:
        accounts, backlog = self.topics.accounts, self._backlog
        assign_new(
            consumer,
            self._decoders,
            self.assigned,
            lambda name: backlog if name == accounts else 0,
            "trading feed",
        )
        if len(self.assigned) == len(self._decoders):
            self.ready.set()


class CommandProducer:
    """Sends commands to ``tr.orders.v1``, keyed by account id.

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        topic: The orders topic.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = Producer(producer_config(bootstrap, **{"linger.ms": 0}))

    def send(self, command: Command) -> None:
        """Queue one command for delivery (librdkafka sends it from its own thread).

        Raises:
            BufferError: When librdkafka's queue is full.
        """
        self._producer.produce(
            self.topic, encode(command), command.account_id, on_delivery=_delivered
        )
        self._producer.poll(0)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued, for up to `timeout_s`."""
        left = self._producer.flush(timeout_s)
        if left:
            logger.warning("%d paper commands were not delivered at shutdown", left)


def _delivered(error: KafkaError | None, message: Message) -> None:
    if error is not None:
        logger.warning("paper command to %s not delivered: %s", message.topic(), error)


@asynccontextmanager
async def trading_delivery(
    settings: ApiAppSettings, streams: TradingStreams
) -> AsyncIterator[TradingFeed | None]:
    """Paper trading for one API process: the command producer and the feed of answers
    and views, wired to `streams` (the hub's). Without a Kafka bootstrap there is
    neither, and `streams.send` answers 503.

    Yields:
        The feed, if any.
    """
    bootstrap = settings.kafka.bootstrap
    if not bootstrap:
        yield None
        return
    prefix = settings.api.topic_prefix
    names = topics.TradingTopics(
        prefix + topics.ORDERS, prefix + topics.EVENTS, prefix + topics.ACCOUNTS
    )
    producer = await asyncio.to_thread(CommandProducer, bootstrap, names.orders)
    feed = TradingFeed(bootstrap, names, streams.deliver)
    feed.start(asyncio.get_running_loop())
    streams.sender = producer.send
    try:
        yield feed
    finally:
        streams.sender = None
        await asyncio.to_thread(feed.stop)
        await asyncio.to_thread(producer.close)

"""Live perpetuals streams: a followed symbol's open interest, funding and liquidations.

A chart of a perpetual follows its symbol's new open-interest samples, funding-estimate
changes and settlements, and liquidations. The feed sees every perpetual's records (a
mark price per symbol per second alone is hundreds a second); it decodes only those of
symbols someone follows (`PerpStreams.keys`, checked on the raw Kafka key), and of the
marks only a change of the funding estimate or of the next funding time is sent.

Messages (bodies as JSON, decimals as exact strings, times in ms):

- ``open_interest``: ``time_ms``, ``open_interest`` (contracts),
  ``open_interest_value`` (quote asset; the last mark price's valuation when the sample
  has none, null before any mark);
- ``funding``: ``settled`` false for an estimate (``time_ms``, ``funding_rate``,
  ``next_funding_time_ms``, ``mark_price``, ``index_price``), true for a settled funding
  time (``time_ms`` = the funding time, ``funding_rate``, ``mark_price``, ``source``);
- ``liquidation``: ``time_ms``, ``side`` (SELL liquidated a long, BUY a short),
  ``price``, ``avg_price``, ``filled_qty``, ``quote_volume``. Binance sends at most one
  per symbol per second: they undercount.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from api.errors import InvalidRequest, NotFound
from api.live.clients import Message, Subscription
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest

PerpUpdate = MarkPrice | Liquidation | OpenInterest | FundingEvent
"""What the feed hands the perpetuals streams."""

PERP_MARKET = "usdm"

_encode = msgspec.json.Encoder(decimal_format="string").encode


def _ms(time_us: int) -> int:
    return time_us // 1000


@dataclass(eq=False, slots=True)
class PerpStream:
    """One followed perpetual: its subscribers and what its next messages depend on."""

    key: str
    subs: set[Subscription] = field(default_factory=set)
    mark: MarkPrice | None = None
    estimate: tuple[Decimal | None, int] | None = None
    seq: int = 0

    def send(self, type: str, body: dict[str, Any]) -> None:
        """Queue one message for every subscriber, encoded once."""
        self.seq += 1
        message = Message(type, _encode(body), self.seq)
        for sub in self.subs:
            sub.client.put(sub, message)

    def update(self, record: PerpUpdate) -> None:
        """Send what `record` changes for the chart."""
        if isinstance(record, MarkPrice):
            self._mark(record)
        elif isinstance(record, OpenInterest):
            value = record.open_interest_value
            if value is None and self.mark is not None:
                value = record.open_interest * self.mark.mark_price
            self.send(
                "open_interest",
                {
                    "time_ms": _ms(record.time_us),
                    "open_interest": record.open_interest,
                    "open_interest_value": value,
                },
            )
        elif isinstance(record, FundingEvent):
            self.send(
                "funding",
                {
                    "settled": True,
                    "time_ms": _ms(record.funding_time_us),
                    "funding_rate": record.funding_rate,
                    "mark_price": record.mark_price,
                    "source": record.source,
                },
            )
        else:
            self.send(
                "liquidation",
                {
                    "time_ms": _ms(record.time_us),
                    "side": record.side,
                    "price": record.price,
                    "avg_price": record.avg_price,
                    "filled_qty": record.filled_qty,
                    "quote_volume": record.quote_volume,
                },
            )

    def _mark(self, mark: MarkPrice) -> None:
        if self.mark is not None and mark.time_us < self.mark.time_us:
            return  # an older update (a partition's backlog): the newer one stands
        self.mark = mark
        estimate = (mark.funding_rate, mark.next_funding_time_us)
        if estimate == self.estimate:
            return
        self.estimate = estimate
        self.send("funding", self.estimate_body())

    def estimate_body(self) -> dict[str, Any]:
        """The `funding` estimate message of the latest mark price."""
        mark = self.mark
        assert mark is not None
        return {
            "settled": False,
            "time_ms": _ms(mark.time_us),
            "funding_rate": mark.funding_rate,
            "next_funding_time_ms": _ms(mark.next_funding_time_us) or None,
            "mark_price": mark.mark_price,
            "index_price": mark.index_price,
        }


class PerpStreams:
    """Every followed perpetual of the process, fed by the live feed.

    Args:
        known: Whether a symbol key is known (the symbol directory, the board, candles
            seen live).
    """

    def __init__(self, known: Callable[[str], bool]) -> None:
        self.known = known
        self._streams: dict[str, PerpStream] = {}
        self.keys: frozenset[bytes] = frozenset()
        """Kafka keys of the followed symbols: the feed decodes only their records (read
        from the feed's thread; replaced whole, never changed in place)."""

    def subscribe(self, sub: Subscription, key: str) -> None:
        """Follow one perpetual (`key`: ``exchange:usdm:symbol``); the latest funding
        estimate seen, if any, comes at once.

        Raises:
            InvalidRequest: For a market other than usdm.
            NotFound: For a symbol that is not known.
        """
        market = key.split(":")[1] if key.count(":") == 2 else ""
        if market != PERP_MARKET:
            raise InvalidRequest(
                f"market: {market[:20]!r} has no perpetuals data; only {PERP_MARKET} has"
            )
        stream = self._streams.get(key)
        if stream is None:
            if not self.known(key):
                raise NotFound(f"unknown symbol {key[:80]!r}", code="unknown_symbol")
            stream = self._streams[key] = PerpStream(key)
            self.keys = self.keys | {key.encode()}
        stream.subs.add(sub)
        sub.target = stream
        if stream.mark is not None:
            stream.seq += 1
            sub.client.put(sub, Message("funding", _encode(stream.estimate_body()), stream.seq))

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop following; a perpetual nobody follows is forgotten."""
        stream: PerpStream | None = sub.target
        if stream is None:
            return
        stream.subs.discard(sub)
        if not stream.subs and self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
            self.keys = self.keys - {stream.key.encode()}

    def add(self, records: Iterable[PerpUpdate]) -> None:
        """Send what each record of a followed perpetual changes, in order."""
        for record in records:
            stream = self._streams.get(record.key)
            if stream is not None:
                stream.update(record)

"""Every symbol of one partition of the signals flow: metrics, signal bars, published rows.

Pure code (no Bytewax, no I/O): `PartitionScanner.fold` takes a batch of candle, quote,
ticker and perpetuals (mark, open interest, liquidation, funding) records and appends the
rank rows, snapshots, signals and rejects they make; `flows.signals.flow` wires it into
the dataflow.

Perpetuals records go to their symbol's `flows.signals.perps.PerpState` (held before the
symbol's first candle too) and show in its next row. Rows still come from 1s candles,
one per new second; only when a symbol's candles lag its perpetuals data by
`PERP_REFRESH_MS` or more (a quiet or stalled symbol) does a perpetuals update itself
refresh the row (keeping the row's `time_ms`), at most once per `PERP_REFRESH_MS` of its
data, and it is published only when it changed. What is still pending when a finite run
ends is refreshed then (`PartitionScanner.flush`), so its last rows hold every record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

import msgspec

from flows.signals.bars import SymbolBars
from flows.signals.metrics import SymbolMetrics
from flows.signals.perps import PerpState
from flows.signals.rules import Registry
from flows.signals.settings import SignalParams
from flows.signals.warm_start import WarmStart
from schemas import perps as perp_schema
from schemas import topics
from schemas.candles import INTERVAL_MS, Candle, candle_decoder
from schemas.deadletter import DeadLetter
from schemas.errors import SchemaError
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest
from schemas.quotes import Quote, quote_decoder
from schemas.ranks import HISTORY_FIELDS, RankRow
from schemas.signals import Signal
from schemas.tickers import Ticker24h, ticker_decoder
from schemas.topics import PerpTopics

SNAPSHOT_EVERY_MS = 60_000
"""A row as of a multiple of this is written to `rank_snapshots`."""

PERP_REFRESH_MS = 2_000
"""A perpetuals update refreshes a symbol's row when its data is this much newer than
the symbol's last row (candle or refresh); a symbol whose candles flow is refreshed by
them."""


DEFAULT_PERP_TOPICS = PerpTopics()
"""The topics of perpetuals data the scanner reads (schemas.perps records)."""
_PERP_ADD: dict[type, Callable[[PerpState, Any], None]] = {
    MarkPrice: PerpState.add_mark,
    OpenInterest: PerpState.add_open_interest,
    Liquidation: PerpState.add_liquidation,
    FundingEvent: PerpState.add_funding,
}
_PERP_CHECK: dict[type, Callable[[Any], Any]] = {
    MarkPrice: perp_schema.check_mark,
    OpenInterest: perp_schema.check_open_interest,
    Liquidation: perp_schema.check_liquidation,
    FundingEvent: perp_schema.check_funding,
}


@dataclass(frozen=True, slots=True)
class ScannerOutput:
    """What one batch produced."""

    ranks: list[RankRow] = field(default_factory=list)
    """Rows that changed, for md.ranks.v1."""
    snapshots: list[RankRow] = field(default_factory=list)
    """Rows as of a whole minute, for `rank_snapshots`."""
    signals: list[Signal] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.ranks or self.snapshots or self.signals or self.dead_letters)


class ScanContext:
    """What a scanner evaluates and how it reads: rules, parameters, decoders, and where a
    fresh state finds its history.

    Args:
        params: Rule parameters and timeframes.
        registry: The signal rules.
        quotes_topic: Records of this topic are quotes.
        tickers_topic: Records of this topic are 24h tickers; every other record is a
            candle, unless of a perpetuals topic.
        warm: Symbols' histories for a state that starts without a snapshot, or None.
        perp_topics: Which topics hold marks, open interest, liquidations and funding.
    """

    def __init__(
        self,
        params: SignalParams,
        registry: Registry,
        quotes_topic: str,
        tickers_topic: str = topics.TICKERS,
        warm: WarmStart | None = None,
        perp_topics: PerpTopics = DEFAULT_PERP_TOPICS,
    ) -> None:
        self.params = params
        self.registry = registry
        self.quotes_topic = quotes_topic
        self.tickers_topic = tickers_topic
        self.warm = warm
        self.decode_candle = candle_decoder().decode
        self.decode_quote = quote_decoder().decode
        self.decode_ticker = ticker_decoder().decode
        self.decoders: dict[str, Callable[[bytes], Any]] = {
            quotes_topic: self.decode_quote,
            tickers_topic: self.decode_ticker,
            perp_topics.marks: perp_schema.mark_decoder().decode,
            perp_topics.open_interest: perp_schema.open_interest_decoder().decode,
            perp_topics.liquidations: perp_schema.liquidation_decoder().decode,
            perp_topics.funding: perp_schema.funding_decoder().decode,
        }
        """Decoder by topic; a topic not here holds candles."""


class Folded(NamedTuple):
    """What one `PartitionScanner.fold` read and computed."""

    candles: int
    quotes: int
    rows: int
    tickers: int = 0
    warm_symbols: int = 0
    perps: int = 0
    """Perpetuals records (marks, open interest, liquidations, funding)."""


class SymbolScanner:
    """One symbol's metrics, signal bars and last published row."""

    __slots__ = ("bars", "metrics", "published", "stamp_ms")

    def __init__(self, candle: Candle, params: SignalParams) -> None:
        self.metrics = SymbolMetrics(candle.exchange, candle.market, candle.symbol)
        self.bars = SymbolBars(candle.exchange, candle.market, candle.symbol, params)
        self.published: tuple[Any, ...] | None = None
        self.stamp_ms = -1
        """Exchange time of the symbol's last row: its candle's, or the perpetuals data's
        that refreshed it."""

    def __setstate__(self, state: tuple[Any, dict[str, Any]]) -> None:
        # A recovery snapshot from before perpetuals has no stamp.
        self.stamp_ms = -1
        for name, value in state[1].items():
            setattr(self, name, value)


_HISTORY_AT = RankRow.__struct_fields__.index(HISTORY_FIELDS[0])
assert RankRow.__struct_fields__[_HISTORY_AT:] == HISTORY_FIELDS
_NEXT_FUNDING_AT = RankRow.__struct_fields__.index("next_funding_s") - 4
"""Where the countdown sits in a row's published values (fields from `price` on)."""


def _invalid(candle: Candle) -> str | None:
    step = INTERVAL_MS[candle.interval]
    if candle.open_time % step or candle.close_time != candle.open_time + step - 1:
        return f"{candle.interval} candle at {candle.open_time} is not aligned to its interval"
    if candle.close <= 0 or candle.volume < 0 or candle.count < 0 or candle.version < 0:
        return "non-positive close, or negative volume, count or version"
    return None


_Held = TypeVar("_Held", Quote, Ticker24h)
_QUOTE_ORDER = attrgetter("update_id")
_TICKER_ORDER = attrgetter("close_time_ms")


class PartitionScanner:
    """Every symbol of one Kafka partition: the flow's whole state for that partition."""

    def __init__(self, from_store: bool = False) -> None:
        self.symbols: dict[str, SymbolScanner] = {}
        self.quotes: dict[str, Quote] = {}
        """Newest quote of each symbol that has no candle yet."""
        self.tickers: dict[str, Ticker24h] = {}
        """Newest 24h ticker of each symbol that has no candle yet."""
        self.from_store = from_store
        """A new symbol takes its history from the context's warm start."""
        self._warmed = 0
        self.perps: dict[str, PerpState] = {}
        """Perpetuals data of each symbol that has any (with or without a candle yet)."""
        self.pending: dict[str, PerpState] = {}
        """Symbols whose perpetuals data changed since their last row."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A recovery snapshot from before perpetuals has none.
        self.perps, self.pending = {}, {}
        self.__dict__.update(state)

    def fold(
        self,
        records: Iterable[Any],
        context: ScanContext,
        out: ScannerOutput,
        reject: Callable[[Any, str, str], None],
    ) -> Folded:
        """Fold a batch of candle, quote, ticker and perpetuals records in, appending what
        they produce.

        Args:
            records: Kafka records of the candle, quote, ticker and perpetuals topics, in
                offset order per topic.
            context: The rules, and how to read the records.
            out: Receives rows, snapshots and signals.
            reject: Called with a record that is not a valid candle, quote, ticker or
                perpetuals record, a reason and a detail (control records are skipped, not
                rejected).

        Returns:
            Records folded by kind, rows computed, histories taken from the warm start.
        """
        decoders = context.decoders
        decode_candle = context.decode_candle
        candles = quotes = tickers = rows = perps = 0
        warmed = self._warmed
        pending = self.pending
        for record in records:
            decode = decoders.get(record.topic(), decode_candle)
            try:
                message = decode(record.value() or b"")
            except msgspec.DecodeError as exc:
                if not topics.is_control(record.headers()):
                    reject(record, "undecodable", str(exc))
                continue
            if isinstance(message, Quote):
                quotes += 1
                self._side(message, self.quotes, _QUOTE_ORDER, SymbolMetrics.set_quote)
                continue
            if isinstance(message, Ticker24h):
                tickers += 1
                self._side(message, self.tickers, _TICKER_ORDER, SymbolMetrics.set_ticker)
                continue
            add = _PERP_ADD.get(type(message))
            if add is not None:
                try:
                    _PERP_CHECK[type(message)](message)
                except SchemaError as exc:
                    reject(record, "invalid_perp", str(exc))
                    continue
                perps += 1
                key = message.key
                state = pending.get(key) or self._perp_state(key, context)
                pending[key] = state
                add(state, message)
                continue
            problem = _invalid(message)
            if problem is not None:
                reject(record, "invalid_candle", problem)
                continue
            candles += 1
            if self._candle(message, context, out):
                rows += 1
                if pending:
                    pending.pop(message.key, None)
        for key, state in list(pending.items()):
            self._refresh(key, state, out, PERP_REFRESH_MS)
        return Folded(candles, quotes, rows, tickers, self._warmed - warmed, perps)

    def flush(self, out: ScannerOutput) -> None:
        """Refresh the row of every symbol whose perpetuals data changed since its last
        row, however recent that was (the end of a finite run)."""
        for key, state in list(self.pending.items()):
            self._refresh(key, state, out, None)

    def _perp_state(self, key: str, context: ScanContext) -> PerpState:
        """The symbol's perpetuals state: held, else its warm start's, else a new one."""
        state = self.perps.get(key)
        if state is None:
            if self.from_store and context.warm is not None:
                state = context.warm.take_perps(key, context.params)
            state = self.perps[key] = state if state is not None else PerpState()
            symbol = self.symbols.get(key)
            if symbol is not None:
                symbol.metrics.perps = state
        return state

    def _refresh(self, key: str, perps: PerpState, out: ScannerOutput, lag_ms: int | None) -> None:
        """Refresh the row of a symbol whose candles lag its perpetuals data by `lag_ms`
        (None: whatever the lag)."""
        state = self.symbols.get(key)
        if state is None or state.metrics.history.time_ms is None:
            self.pending.pop(key)  # no row yet: its first 1s candle's row will hold the data
            return
        if lag_ms is not None and perps.newest_ms < state.stamp_ms + lag_ms:
            return
        del self.pending[key]
        state.stamp_ms = max(state.stamp_ms, perps.newest_ms)
        self._publish(state, state.metrics.row(), out)

    def _side(
        self,
        message: _Held,
        held: dict[str, _Held],
        order: Callable[[_Held], int],
        give: Callable[[SymbolMetrics, _Held], None],
    ) -> None:
        """A quote or 24h ticker goes to its symbol's metrics; before the symbol's first
        candle, the newest of its kind (by `order`) is held in `held` until then."""
        state = self.symbols.get(message.key)
        if state is not None:
            give(state.metrics, message)
            return
        before = held.get(message.key)
        if before is None or order(before) <= order(message):
            held[message.key] = message

    def _candle(self, candle: Candle, context: ScanContext, out: ScannerOutput) -> int:
        """Fold a candle in; returns the rows it made (0 or 1)."""
        key = candle.key
        state = self.symbols.get(key)
        if state is None:
            state = self.symbols[key] = SymbolScanner(candle, context.params)
            if self.from_store and context.warm is not None:
                warmed = context.warm.take(key, context.params)
                if warmed is not None:
                    state.metrics.history = warmed.history
                    if warmed.bars is not None:
                        state.bars = warmed.bars
                    self._warmed += 1
            quote = self.quotes.pop(key, None)
            if quote is not None:
                state.metrics.set_quote(quote)
            ticker = self.tickers.pop(key, None)
            if ticker is not None:
                state.metrics.set_ticker(ticker)
            perps = self.perps.get(key)
            if perps is None and self.from_store and context.warm is not None:
                perps = context.warm.take_perps(key, context.params)
                if perps is not None:
                    self.perps[key] = perps
            state.metrics.perps = perps
        if candle.interval == "1m":
            state.metrics.add_minute(candle)
            out.signals.extend(state.bars.add_minute(candle, context.registry, context.params))
            return 0
        if not state.metrics.add_second(candle):
            return 0
        row = state.metrics.row()
        state.stamp_ms = max(state.stamp_ms, row.time_ms)
        if row.time_ms % SNAPSHOT_EVERY_MS == 0:
            out.snapshots.append(row)
        self._publish(state, row, out)
        return 1

    @staticmethod
    def _publish(state: SymbolScanner, row: RankRow, out: ScannerOutput) -> None:
        """Publish the row if it differs from the symbol's last published one."""
        # Everything but the time: a row that only moved on a second is not news (the
        # funding countdown counts as its end, the next funding time). The history it
        # stands on is news only when it breaks (a gap), not as the rings' oldest second
        # slides on.
        history = state.metrics.history
        values = [
            *msgspec.structs.astuple(row)[4:_HISTORY_AT],
            history.seconds_since(),
            history.minutes_since(),
        ]
        if row.next_funding_s is not None:
            values[_NEXT_FUNDING_AT] = row.time_ms + row.next_funding_s * 1000.0
        published = tuple(values)
        if published != state.published:
            state.published = published
            out.ranks.append(row)

"""Settled funding from the live mark-price stream: the last estimate before each funding time.

Binance's ``markPriceUpdate`` carries the current funding-rate estimate and the next
funding time. When a symbol's next funding time advances, the funding time it named has
settled, and the estimate of the last update seen before that time is the rate that
applied: it becomes a `FundingEvent` with ``source="stream"`` (``funding.version`` 1, so
the exchange's own rate, backfilled later, replaces it).

`SymbolFunding` is the per-symbol state and its rule; it is pure (no I/O, no Bytewax).
One funding time yields at most one event, also when marks are delivered again or a
restarted flow re-reads older ones: marks no newer than the newest seen are ignored, and
funding times up to the latest settled one (`settled_us`, seeded from the `funding` table
at start) are never derived again.
"""

from __future__ import annotations

from schemas.perps import FundingEvent, MarkPrice


class SymbolFunding:
    """What the funding derivation knows of one symbol.

    Args:
        last: The newest mark seen (by exchange event time), or None.
        settled_us: The latest funding time known settled (a row in ``funding``, derived
            here or learnt from another source); 0 when none.
    """

    __slots__ = ("before", "last", "settled_us")

    def __init__(self, last: MarkPrice | None = None, settled_us: int = 0) -> None:
        self.last = last
        # The newest mark seen before its own next funding time: the estimate that stands
        # for that funding time until it passes.
        self.before = (
            last if last is not None and last.time_us < last.next_funding_time_us else None
        )
        self.settled_us = settled_us

    def observe(self, mark: MarkPrice, max_gap_us: int) -> FundingEvent | None:
        """Take the next mark of this symbol; return the funding it shows settled, if any.

        Args:
            mark: A checked mark price of this symbol.
            max_gap_us: The last estimate must have been seen at most this long before the
                funding time to stand for it (after a gap in the stream, the exchange's
                history is the only honest source of the rate).

        Returns:
            The settled funding time's event (source ``stream``, with the mark price of that
            last estimate), or None.
        """
        last = self.last
        if last is not None and mark.time_us <= last.time_us:
            return None  # seen already: a redelivery, or a rerun over stored marks
        self.last = mark
        event = None
        before = self.before
        if before is not None:
            due = before.next_funding_time_us
            if (
                mark.next_funding_time_us > due > self.settled_us
                and before.funding_rate is not None
                and due - before.time_us <= max_gap_us
            ):
                event = FundingEvent(
                    before.exchange,
                    before.market,
                    before.symbol,
                    due,
                    before.funding_rate,
                    "stream",
                    before.mark_price,
                )
                self.settled_us = due
        if mark.time_us < mark.next_funding_time_us:
            self.before = mark
        return event

    def settled(self, funding_time_us: int) -> None:
        """Note a funding time settled by another source (e.g. the simulated market's event)."""
        if funding_time_us > self.settled_us:
            self.settled_us = funding_time_us

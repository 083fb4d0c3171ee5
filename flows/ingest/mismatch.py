"""A kline mismatch: our 1m candle and the exchange's closed kline disagree.

What the cross-check finds (`flows.ingest.crosscheck`) and the data-quality log records
(`flows.ingest.data_quality`); both take its shape from here.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_CANDLE = "no candle from tickscan"
"""The detail of a mismatch whose minute has an exchange kline and no candle of ours."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Our candle and the exchange's kline disagree after the settle time."""

    exchange: str
    market: str
    symbol: str
    open_time: int
    fields: list[str]
    missing_ours: bool = False

    @property
    def detail(self) -> str:
        """The differing fields (``name: ours != theirs``, ``; ``-separated), or `NO_CANDLE`."""
        return NO_CANDLE if self.missing_ours else "; ".join(self.fields)

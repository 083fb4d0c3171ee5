"""What `tickscan run` is asked for: its options, checked before anything starts, and the
trade source it settles on (live Binance when every market answers, else the simulator).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from api.deps import SourceKind
from flows.sources.binance.rest import BinanceRest, BinanceRestError
from schemas.trades import Market
from tickscan.errors import TickscanError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """What `tickscan run` starts.

    Attributes:
        source: `binance` (live, falling back to `sim` when unreachable), `sim`, or
            `replay:PATH`.
        markets: Binance markets to follow live.
        rest_url: Binance REST base URL (None: Binance's).
        ws_base: Binance WebSocket base URL (None: Binance's).
        symbols: Symbols of the synthetic market.
        rate: Its trades per second (wall clock = event time).
        seed: Its random seed.
        crosscheck: Live Binance only: also follow the exchange's closed 1m klines and
            compare them with our 1m candles (mismatches go to ``data_quality``).
        api: Serve the API (``settings.api.host``/``port``) beside the flows.
        funding_every_s: The synthetic market's perpetuals settle funding this often,
            in seconds of event time (8 h as on Binance: 00/08/16 UTC; fewer for demos).
    """

    source: str = "binance"
    markets: tuple[Market, ...] = ("spot", "usdm")
    rest_url: str | None = None
    ws_base: str | None = None
    symbols: int = 200
    rate: float = 2_000.0
    seed: int = 1
    crosscheck: bool = False
    api: bool = True
    funding_every_s: int = 8 * 3_600


class RunError(TickscanError):
    """`tickscan run` was asked for something it cannot do."""


def replay_paths(source: str) -> list[Path]:
    """The files of a `replay:PATH[,PATH]` source."""
    return [Path(p) for p in source.removeprefix("replay:").split(",") if p]


def check_options(options: RunOptions) -> None:
    """Refuse options `run` cannot honour, before anything (broker, store) is started.

    Raises:
        RunError: An unknown source, a replay of missing files, no market, a market
            that is not spot or usdm.
    """
    source = options.source
    if source.startswith("replay:"):
        paths = replay_paths(source)
        missing = [str(p) for p in paths if not p.exists()]
        if not paths or missing:
            raise RunError(
                f"--source {source!r}: replay needs existing files"
                + (f" ({', '.join(missing)} not found)" if missing else "")
            )
    elif source not in ("binance", "sim"):
        raise RunError(f"--source {source!r} is not a source: use binance, sim or replay:PATH")
    if not options.markets or any(m not in ("spot", "usdm") for m in options.markets):
        raise RunError(f"--markets takes spot, usdm or both, not {','.join(options.markets)!r}")


def source_kind(source: str) -> SourceKind:
    """`binance`, `sim` or `replay`: what feeds the board, as `/api/v1/health` says it."""
    if source.startswith("replay:"):
        return "replay"
    if source in ("binance", "sim"):
        return source  # type: ignore[return-value]
    raise RunError(f"unknown source {source!r}")


def choose_source(options: RunOptions, reachable: Callable[[Market], str | None]) -> str:
    """The source `run` will use: `binance` only if every market answers, else `sim`.

    Args:
        options: What was asked for.
        reachable: Returns None when a market's REST API answers, else why not.

    Returns:
        `binance`, `sim` or `replay:PATH`.
    """
    if options.source != "binance":
        return options.source
    for market in options.markets:
        problem = reachable(market)
        if problem is not None:
            logger.warning(
                "Binance %s cannot be reached (%s): running on the SIMULATED market instead; "
                "its trades are labelled exchange 'sim'",
                market,
                problem,
            )
            return "sim"
    return "binance"


def binance_reachable(
    rest_url: str | None, timeout_s: float = 5.0
) -> Callable[[Market], str | None]:
    """A probe of Binance's REST API per market, for `choose_source`."""

    def probe(market: Market) -> str | None:
        async def ask() -> None:
            async with BinanceRest(market, rest_url) as rest:
                await asyncio.wait_for(rest.exchange_info(), timeout_s)

        try:
            asyncio.run(ask())
        except (BinanceRestError, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None

    return probe

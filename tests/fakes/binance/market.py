"""The fake exchange's market: per-market facts, its symbols, their generated trades and klines."""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

Market = Literal["spot", "usdm"]

MINUTE_MS = 60_000
SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")  # what Binance takes as a symbol name
QUOTES = ("FDUSD", "USDT", "USDC", "BTC", "ETH", "BNB", "EUR", "TRY")


@dataclass(frozen=True)
class Template:
    """Price level and precisions of a symbol, modelled on a real listing."""

    base: str
    price: str
    price_dec: int  # tick size = 10**-price_dec
    qty_dec: int  # step size = 10**-qty_dec
    max_qty: int  # largest trade, in steps


# Spot prints every decimal with 8 places, so price_dec + qty_dec stays <= 8 and the quote
# volume (price * qty) is exact in 8 places too.
_SPOT_TEMPLATES = (
    Template("BTC", "60000", 2, 5, 50_000),
    Template("ETH", "3000", 2, 4, 20_000),
    Template("BNB", "550", 2, 3, 5_000),
    Template("SOL", "150", 2, 3, 20_000),
    Template("XRP", "0.5", 4, 1, 20_000),
    Template("DOGE", "0.12", 5, 0, 20_000),
    Template("ADA", "0.35", 4, 1, 20_000),
    Template("LINK", "14", 2, 2, 10_000),
    Template("PEPE", "0.00001", 8, 0, 10_000_000),
)
_USDM_TEMPLATES = (
    Template("BTC", "60000", 1, 3, 500),
    Template("ETH", "3000", 2, 3, 5_000),
    Template("BNB", "550", 2, 2, 1_000),
    Template("SOL", "150", 2, 0, 100),
    Template("XRP", "0.5", 4, 1, 20_000),
    Template("DOGE", "0.12", 5, 0, 20_000),
    Template("ADA", "0.35", 4, 0, 20_000),
    Template("LINK", "14", 3, 2, 10_000),
    Template("1000PEPE", "0.01", 7, 0, 1_000_000),
)


@dataclass(frozen=True)
class MarketSpec:
    """What differs between spot and USDⓈ-M, per Binance's documentation."""

    rest_prefix: str
    weight_limit: int
    incoming_per_s: int  # control messages, pings and pongs a client may send per second
    max_streams: int
    kline_limit: int
    historical_limit: tuple[int, int]  # (default, max) of historicalTrades
    intervals: tuple[str, ...]
    ws_routes: dict[str, frozenset[str] | None]  # URL prefix -> stream kinds it carries
    delisted_status: str
    templates: tuple[Template, ...]


SPECS: dict[str, MarketSpec] = {
    "spot": MarketSpec(
        rest_prefix="/api/v3/",
        weight_limit=6000,
        incoming_per_s=5,
        max_streams=1024,
        kline_limit=1000,
        historical_limit=(500, 1000),
        intervals=("1s", "1m"),
        ws_routes={"": None},
        delisted_status="BREAK",
        templates=_SPOT_TEMPLATES,
    ),
    "usdm": MarketSpec(
        rest_prefix="/fapi/v1/",
        weight_limit=2400,
        incoming_per_s=10,
        max_streams=1024,
        kline_limit=1500,
        historical_limit=(100, 500),
        intervals=("1m",),
        # Since 2026 USDⓈ-M routes streams by path; a stream on the wrong path is accepted
        # and stays silent (Binance: "this fails silently rather than erroring").
        ws_routes={
            "/market": frozenset(
                {"aggTrade", "kline_1m", "bookTicker", "markPrice@1s", "!forceOrder@arr"}
            ),
            "/public": frozenset({"trade", "bookTicker", "depth20@100ms"}),
        },
        # A delisted perpetual settles; spot pairs go to BREAK.
        delisted_status="SETTLING",
        templates=_USDM_TEMPLATES,
    ),
}


def fmt(units: int, dec: int, width: int) -> str:
    """Print ``units * 10**-dec`` with `width` decimals, like Binance's decimal strings."""
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(dec + 1, "0")
    whole, frac = (digits[:-dec], digits[-dec:]) if dec else (digits, "")
    frac = frac.ljust(width, "0")
    return f"{sign}{whole}.{frac}" if width else f"{sign}{whole}"


class Print(NamedTuple):
    """One generated aggregate trade; spot aggregates always hold one raw trade."""

    agg_id: int
    first_id: int
    last_id: int
    price: int  # ticks
    qty: int  # steps
    time_ms: int
    buyer_is_maker: bool
    raw_qtys: tuple[int, ...]  # quantity of each raw trade first_id..last_id, in steps


class KlineAcc:
    """One kline being built from prints; the same code feeds REST rows and WS events."""

    __slots__ = (
        "c",
        "close_ms",
        "first",
        "h",
        "l",
        "last",
        "n",
        "o",
        "open_ms",
        "q",
        "tq",
        "tv",
        "v",
    )

    def __init__(self, open_ms: int, interval_ms: int, price: int) -> None:
        self.open_ms = open_ms
        self.close_ms = open_ms + interval_ms - 1
        self.o = self.h = self.l = self.c = price
        self.v = self.q = self.n = self.tv = self.tq = 0
        self.first = self.last = -1

    def add(self, p: Print) -> None:
        if self.n == 0:
            self.o = self.h = self.l = p.price
            self.first = p.first_id
        self.h = max(self.h, p.price)
        self.l = min(self.l, p.price)
        self.c = p.price
        self.last = p.last_id
        self.n += p.last_id - p.first_id + 1
        self.v += p.qty
        self.q += p.price * p.qty
        if not p.buyer_is_maker:  # the taker bought
            self.tv += p.qty
            self.tq += p.price * p.qty


class Symbol:
    """One listed symbol: its parameters, its trade history and its live state."""

    def __init__(self, name: str, base: str, quote: str, tpl: Template, spot: bool, seed: int):
        self.name = name
        self.stream = name.lower()
        self.base, self.quote = base, quote
        self.price_dec, self.qty_dec, self.max_qty = tpl.price_dec, tpl.qty_dec, tpl.max_qty
        self.px_w = 8 if spot else tpl.price_dec
        self.qty_w = 8 if spot else tpl.qty_dec
        self.quote_w = 8 if spot else tpl.price_dec + tpl.qty_dec
        # Seeded by text: str seeds hash deterministically, unlike hash() of a tuple.
        self.rng = random.Random(f"{seed}:{name}")
        self.price = int(Decimal(tpl.price).scaleb(tpl.price_dec))
        self.floor = max(1, self.price // 4)
        self.next_raw = self.rng.randrange(10**8, 5 * 10**9)
        self.next_agg = self.next_raw * 4 // 5
        self.book_id = self.rng.randrange(10**9, 10**12)
        self.status = "TRADING"
        self.prints: list[Print] = []
        self.times: list[int] = []
        self.firsts: list[int] = []
        self.skip = 0
        self.silent_until = 0.0
        self.carry = 0.0
        self.kline: KlineAcc | None = None
        self.kline_sent = -math.inf

    def px(self, units: int) -> str:
        return fmt(units, self.price_dec, self.px_w)

    def qty(self, units: int) -> str:
        return fmt(units, self.qty_dec, self.qty_w)

    def quote_amount(self, units: int) -> str:
        return fmt(units, self.price_dec + self.qty_dec, self.quote_w)

    def generate(self, time_ms: int, max_raw: int) -> Print:
        """Make the next print: a random-walk price, contiguous ids, time never going back."""
        rng = self.rng
        self.price = max(self.floor, self.price + rng.randint(-2, 2))
        qty = rng.randint(1, self.max_qty)
        raws = rng.randint(1, max_raw) if max_raw > 1 else 1
        qty = max(qty, raws)
        if raws == 1:
            raw_qtys: tuple[int, ...] = (qty,)
        else:
            cuts = sorted(rng.sample(range(1, qty), raws - 1))
            bounds = [0, *cuts, qty]
            raw_qtys = tuple(b - a for a, b in itertools.pairwise(bounds))
        if self.times:
            time_ms = max(time_ms, self.times[-1])
        p = Print(
            agg_id=self.next_agg,
            first_id=self.next_raw,
            last_id=self.next_raw + raws - 1,
            price=self.price,
            qty=qty,
            time_ms=time_ms,
            buyer_is_maker=rng.random() < 0.5,
            raw_qtys=raw_qtys,
        )
        self.next_agg += 1
        self.next_raw += raws
        self.book_id += 1
        self.prints.append(p)
        self.times.append(time_ms)
        self.firsts.append(p.first_id)
        return p

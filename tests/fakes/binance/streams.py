"""The fake Binance's live market: each tick's trades and the stream events they make.

Besides trades, book tickers and klines it serves the partial depth
(``<symbol>@depth20@100ms``) of every subscribed symbol every 100 ms: 20 levels a side,
one tick apart around the last price, in spot's shape (``lastUpdateId``, ``bids``,
``asks``) or USDⓈ-M's (a ``depthUpdate`` event with ``E``, ``T``, ``U``, ``u``, ``pu``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from tests.fakes.binance.market import MINUTE_MS, KlineAcc, Print, Symbol
from tests.fakes.binance.ws import encode

logger = logging.getLogger(__name__)

DEPTH_STREAM = "depth20@100ms"
DEPTH_EVERY_MS = 100
DEPTH_LEVELS = 20


class MarketStreams:
    """FakeBinance's trade generator and stream events (a part of it: it reads its state)."""

    async def _run(self) -> None:
        assert self._loop is not None
        last = self._loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            mono = self._loop.time()
            self._mono = mono
            try:
                self._tick(mono - last, mono)
            except Exception:  # a bug here must not silently stop the market
                logger.exception("fake Binance tick failed")
            last = mono

    def _tick(self, dt: float, mono: float) -> None:
        now = self.now_ms()
        expected = self.rate * dt
        if expected > 0:
            max_raw = 1 if self._spot else 3
            dt_ms = dt * 1000
            for sym in self._symbols.values():
                if sym.status != "TRADING":
                    continue
                sym.carry += expected
                n = int(sym.carry)
                if not n:
                    continue
                sym.carry -= n
                for k in range(n):
                    p = sym.generate(now - int((n - 1 - k) * dt_ms / n), max_raw)
                    self._publish(sym, p, now)
        minute = now // MINUTE_MS
        if minute != self._last_minute:
            self._last_minute = minute
            for sym in self._symbols.values():
                if sym.kline is not None and sym.kline.close_ms < now:
                    self._emit_kline(sym, sym.kline, True, now)
                    sym.kline = None
                    self._dirty_klines.discard(sym)
        for sym in list(self._dirty_klines):
            if mono - sym.kline_sent >= self.kline_update_s and sym.kline is not None:
                self._emit_kline(sym, sym.kline, False, now)
                sym.kline_sent = mono
                self._dirty_klines.discard(sym)
        if now - self._depth_sent_ms >= DEPTH_EVERY_MS:
            self._depth_sent_ms = now
            for sym in self._symbols.values():
                stream = sym.stream + "@" + DEPTH_STREAM
                if stream in self._subs and sym.status == "TRADING":
                    self._emit(stream, self._depth_event(sym, now))
        self._perp_tick(now)
        self._housekeep(mono)
        for conn in self._conns:
            if conn.outbox or conn.ping_due:
                conn.wake.set()

    def _publish(self, sym: Symbol, p: Print, now: int) -> None:
        acc = sym.kline
        open_ms = p.time_ms // MINUTE_MS * MINUTE_MS
        if acc is None or acc.open_ms != open_ms:
            if acc is not None:
                self._emit_kline(sym, acc, True, now)
            acc = sym.kline = KlineAcc(open_ms, MINUTE_MS, p.price)
        acc.add(p)
        self._dirty_klines.add(sym)
        subs, s = self._subs, sym.stream
        if sym.silent_until > self._mono:
            return
        if sym.skip:
            sym.skip -= 1
        else:
            if s + "@aggTrade" in subs:
                self._emit(s + "@aggTrade", self._agg_event(sym, p, now))
            if s + "@trade" in subs:
                for row in self._trade_events(sym, p, now):
                    self._emit(s + "@trade", row)
        if s + "@bookTicker" in subs:
            self._emit(s + "@bookTicker", self._book_event(sym, p, now))

    def _agg_event(self, sym: Symbol, p: Print, now: int) -> dict[str, Any]:
        if self._spot:
            return {
                "e": "aggTrade", "E": now, "s": sym.name, "a": p.agg_id, "p": sym.px(p.price),
                "q": sym.qty(p.qty), "f": p.first_id, "l": p.last_id, "T": p.time_ms,
                "m": p.buyer_is_maker, "M": True,
            }  # fmt: skip
        return {
            "e": "aggTrade", "E": now, "a": p.agg_id, "s": sym.name, "p": sym.px(p.price),
            "q": sym.qty(p.qty), "f": p.first_id, "l": p.last_id, "T": p.time_ms,
            "m": p.buyer_is_maker,
        }  # fmt: skip

    def _trade_events(self, sym: Symbol, p: Print, now: int) -> Iterable[dict[str, Any]]:
        px = sym.px(p.price)
        for i, q in enumerate(p.raw_qtys):
            if self._spot:
                yield {
                    "e": "trade", "E": now, "s": sym.name, "t": p.first_id + i, "p": px,
                    "q": sym.qty(q), "T": p.time_ms, "m": p.buyer_is_maker, "M": True,
                }  # fmt: skip
            else:
                yield {
                    "e": "trade", "E": now, "T": p.time_ms, "s": sym.name, "t": p.first_id + i,
                    "p": px, "q": sym.qty(q), "X": "MARKET", "m": p.buyer_is_maker,
                }  # fmt: skip

    def _book_event(self, sym: Symbol, p: Print, now: int) -> dict[str, Any]:
        # The taker sold into the bid (m) or bought the ask; the book sits one tick around.
        bid, ask = (p.price, p.price + 1) if p.buyer_is_maker else (max(1, p.price - 1), p.price)
        bid_qty = p.qty * 7919 % (sym.max_qty * 5) + 1
        ask_qty = p.qty * 104729 % (sym.max_qty * 5) + 1
        event: dict[str, Any] = {} if self._spot else {"e": "bookTicker"}
        event.update(
            u=sym.book_id, s=sym.name, b=sym.px(bid), B=sym.qty(bid_qty), a=sym.px(ask),
            A=sym.qty(ask_qty),
        )  # fmt: skip
        if not self._spot:
            event.update(T=p.time_ms, E=now)
        return event

    def _depth_event(self, sym: Symbol, now: int) -> dict[str, Any]:
        """The symbol's 20 best levels a side: the last price is the best ask."""
        first = sym.book_id
        sym.book_id += 1 + now % 7  # several book updates per 100 ms, as on a live market
        bids = [
            [sym.px(sym.price - k), sym.qty((sym.price + 31 * k) * 7919 % (sym.max_qty * 5) + 1)]
            for k in range(1, DEPTH_LEVELS + 1)
            if sym.price - k >= 1
        ]
        asks = [
            [sym.px(sym.price + k), sym.qty((sym.price + 17 * k) * 104729 % (sym.max_qty * 5) + 1)]
            for k in range(DEPTH_LEVELS)
        ]
        if self._spot:
            return {"lastUpdateId": sym.book_id, "bids": bids, "asks": asks}
        return {
            "e": "depthUpdate", "E": now, "T": now - 1, "s": sym.name, "U": first + 1,
            "u": sym.book_id, "pu": first, "b": bids, "a": asks,
        }  # fmt: skip

    def _emit_kline(self, sym: Symbol, acc: KlineAcc, closed: bool, now: int) -> None:
        stream = sym.stream + "@kline_1m"
        if stream not in self._subs or sym.silent_until > self._mono:
            return
        k = {
            "t": acc.open_ms, "T": acc.close_ms, "s": sym.name, "i": "1m", "f": acc.first,
            "L": acc.last, "o": sym.px(acc.o), "c": sym.px(acc.c), "h": sym.px(acc.h),
            "l": sym.px(acc.l), "v": sym.qty(acc.v), "n": acc.n, "x": closed,
            "q": sym.quote_amount(acc.q), "V": sym.qty(acc.tv), "Q": sym.quote_amount(acc.tq),
            "B": "0",
        }  # fmt: skip
        self._emit(stream, {"e": "kline", "E": now, "s": sym.name, "k": k})

    def _emit(self, stream: str, payload: dict[str, Any]) -> None:
        conns = self._subs.get(stream)
        if not conns:
            return
        data = encode(payload).decode()
        wrapped: str | None = None
        mono = self._mono
        for conn in conns:
            if conn.stalled_until > mono or conn.closing:
                continue
            if conn.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":"{stream}","data":{data}}}'
                conn.push(wrapped)
            else:
                conn.push(data)

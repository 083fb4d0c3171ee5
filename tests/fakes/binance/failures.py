"""Failures the fake Binance injects on request, like the real exchange on a bad day."""

from __future__ import annotations

from tests.fakes.binance.ws import encode


class Failures:
    """FakeBinance's misbehaviour on request (a part of it: it acts on the exchange's state)."""

    def drop_connections(self) -> None:
        """Abort every WebSocket's TCP connection: no close frame, like a network cut."""

        def drop() -> None:
            for conn in list(self._conns):
                conn.closing = True
                if conn.transport is not None:
                    conn.transport.abort()

        self._apply(drop)

    def server_shutdown(self) -> None:
        """Send each socket the ``serverShutdown`` event; close it `shutdown_grace_s` later."""

        def shutdown() -> None:
            now = self.now_ms()
            data = encode({"e": "serverShutdown", "E": now}).decode()
            for conn in self._conns:
                if conn.closing or conn.shutdown_at is not None:
                    continue
                frame = f'{{"stream":"!serverShutdown","data":{data}}}' if conn.combined else data
                conn.push(frame)
                conn.wake.set()
                conn.shutdown_at = self._clock() + self.shutdown_grace_s

        self._apply(shutdown)

    def skip_ids(self, symbol: str, count: int) -> None:
        """Generate the next `count` trades of `symbol` (REST has them) but send none of them.

        They are missing from the ``trade`` and ``aggTrade`` streams only: klines and
        bookTicker still reflect them, as the exchange's state does.
        """
        sym = self._symbol(symbol)

        def skip() -> None:
            sym.skip += count

        self._apply(skip)

    def stall(self, seconds: float) -> None:
        """Silence every socket open now for `seconds`: no data and no pings, sockets stay open.

        Trades keep being generated; those due on a stalled socket are never sent on it
        (a client must notice the silence and repair the gap). Sockets opened during the
        stall are served normally, so reconnecting is a cure.
        """

        def silence() -> None:
            until = self._clock() + seconds
            for conn in self._conns:
                conn.stalled_until = until

        self._apply(silence)

    def silence(self, symbol: str, seconds: float) -> None:
        """Send nothing of `symbol` for `seconds`: no trade, aggTrade, bookTicker or kline.

        The symbol keeps trading (REST has its trades) and every other symbol, and every
        connection, goes on as before: only this symbol's streams go quiet, as when the
        exchange stops publishing one symbol. Its trades made meanwhile are never sent.
        """
        sym = self._symbol(symbol)

        def mute() -> None:
            sym.silent_until = self._clock() + seconds

        self._apply(mute)

    def fail_rest(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `count` REST requests with `status` (429 and 418 as Binance does).

        Args:
            status: 429 (``-1003`` too many requests), 418 (``-1003`` IP banned) or any
                other 4xx/5xx (``-1000``/``-1001``).
            count: How many requests fail.
            retry_after: The ``Retry-After`` seconds; default to the end of the current
                minute (429) or `ban_s` (418).
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error, got {status}")

        def fail() -> None:
            self._forced.extend([(status, retry_after)] * count)

        self._apply(fail)

    def delist(self, symbol: str) -> None:
        """Halt `symbol`: exchangeInfo shows BREAK (spot) or SETTLING (USDⓈ-M), no new trades."""
        sym = self._symbol(symbol)
        status = self._spec.delisted_status

        def halt() -> None:
            sym.status = status

        self._apply(halt)

    def list_symbol(self, symbol: str) -> None:
        """Set `symbol` TRADING again, or list it as a new symbol."""

        def resume() -> None:
            name = symbol.upper()
            sym = self._symbols.get(name) or self._add_symbol(name)
            sym.status = "TRADING"

        self._apply(resume)

"""The paper venue's state and how an event reaches an account.

`Venue` holds what the engine knows (settings, symbols, books, marks, accounts, the index
of working orders) and the one way an account changes: `_emit` builds the next event in
the account's log at market time and applies it through `flows.trading.ledger.apply` at
once, so every later decision already sees its effect. `Working` notes (queue position,
waiting since) live here, outside the fold: a restore rebuilds them (`_reindex`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flows.trading import futures, ledger
from flows.trading.book import Book, Taken
from flows.trading.matching import Take
from flows.trading.orders import Working, is_waiting_stop, must_take_now
from flows.trading.settings import PaperSettings
from flows.trading.state import AccountState
from flows.trading.views import SPOT_QUOTE, MarketContext, margin
from schemas.perps import MarkPrice
from schemas.symbols import SymbolInfo
from schemas.trading import AccountEvent, AccountReset, Order, OrderFilled, Side

RECENT_COMMANDS = 10_000
"""Command ids remembered per account to drop a redelivered command (a redelivery is of
a recent command: the consumer resumes from its last committed offset)."""


class Venue:
    """The paper venue's state: settings, symbols, books, marks, accounts and the index
    of working orders; every change to an account goes through `_emit`."""

    def __init__(self, settings: PaperSettings) -> None:
        self._settings = settings
        self._stale_us = int(settings.book_stale_after_s * 1_000_000)
        self._wait_us = int(settings.market_order_wait_s * 1_000_000)
        self._symbols: dict[tuple[str, str], dict[str, SymbolInfo]] = {}
        self._books: dict[str, Book] = {}
        self._marks: dict[str, MarkPrice] = {}
        self._accounts: dict[str, AccountState] = {}
        self._working: dict[str, dict[tuple[str, int], Working]] = {}
        # Each key's working orders in id order, built on demand and dropped when the set
        # changes (every trade and book update walks it; it changes far less often).
        self._working_sorted: dict[str, list[Working]] = {}
        # Per key, the highest buy and lowest sell limit resting (None for a side without
        # one), or None when an order a trade must always see is there (a stop on the
        # last price): a trade beyond both reaches no order (`_reach_of`).
        self._reach: dict[str, tuple[Decimal | None, Decimal | None] | None] = {}
        # Per key, whether a stop there watches the mark price (else a mark skips them).
        self._mark_stops: dict[str, bool] = {}
        self._waiting_keys: dict[str, None] = {}
        # Keys where some working order may not know its queue yet: a book update teaches
        # it (the others skip that walk).
        self._unlearned: dict[str, None] = {}
        # Per (account, key), what the account's taker orders took from the key's book
        # and may not take again until newer book data replaces it.
        self._taken: dict[tuple[str, str], Taken] = {}
        self._recent: dict[str, dict[str, None]] = {}
        self._spot_fees: dict[str, Decimal] = {}
        self._now_us = 0
        self._command_id = ""

    # ---- events -------------------------------------------------------------------

    def _emit(self, state: AccountState, out: list[AccountEvent], kind: type, **fields: Any) -> Any:
        event = kind(
            account_id=state.account_id, seq=state.seq + 1, time_us=self._now_us,
            command_id=self._command_id, **fields,
        )  # fmt: skip
        self._apply(state, event)
        out.append(event)
        return event

    def _apply(self, state: AccountState, event: AccountEvent) -> None:
        ledger.apply(state, event)
        self._remember(state.account_id, event.command_id)
        self._after_apply(state, event)

    def _remember(self, account_id: str, command_id: str) -> None:
        if not command_id:
            return
        recent = self._recent[account_id]
        recent[command_id] = None
        if len(recent) > RECENT_COMMANDS:
            del recent[next(iter(recent))]

    def _after_apply(self, state: AccountState, event: AccountEvent) -> None:
        order: Order | None = getattr(event, "order", None)
        if order is not None:
            if not order.is_open:
                self._untrack(state, order)
            else:
                # Its price, stop or trigger may have changed: the symbol's reach is redone.
                self._forget_prices(self._key(state, order.request.symbol))
        if state.market != "spot":
            return
        # spot fees in the quote asset since the account opened or reset (a fee in the
        # base asset at its fill's price), for the view: derived from the log like the rest
        if isinstance(event, OrderFilled):
            fill = event.fill
            fee = fill.fee * fill.price if fill.side == "BUY" else fill.fee
            self._spot_fees[state.account_id] = self._spot_fees.get(state.account_id, 0) + fee
        elif isinstance(event, AccountReset):
            self._spot_fees.pop(state.account_id, None)

    # ---- lookups ------------------------------------------------------------------

    def _info(self, state: AccountState, symbol: str) -> SymbolInfo | None:
        return self._symbols.get((state.exchange, state.market), {}).get(symbol)

    def _key(self, state: AccountState, symbol: str) -> str:
        return f"{state.exchange}:{state.market}:{symbol}"

    def _fresh_book(self, key: str) -> Book | None:
        book = self._books.get(key)
        return book if book is not None and book.is_fresh(self._now_us, self._stale_us) else None

    def _took(self, account_id: str, key: str, book: Book, side: Side, takes: list[Take]) -> None:
        """Remember what an order of the account took from the key's book."""
        found = self._taken.get((account_id, key))
        if found is None:
            found = self._taken[(account_id, key)] = Taken()
        found.record(book, side, ((take.price, take.qty) for take in takes))

    def _context(self, state: AccountState) -> MarketContext:
        books = self._books
        prefix = f"{state.exchange}:{state.market}:"
        marks = {
            symbol: self._marks[prefix + symbol].mark_price
            for symbol in state.positions
            if prefix + symbol in self._marks
        }
        return MarketContext(
            settings=self._settings,
            symbols=self._symbols.get((state.exchange, state.market), {}),
            books={s: books[prefix + s] for s in self._held_symbols(state) if prefix + s in books},
            marks=marks,
            spot_fees=self._spot_fees.get(state.account_id, Decimal(0)),
        )

    def _held_symbols(self, state: AccountState) -> list[str]:
        if state.market == "usdm":
            return sorted(state.positions)
        infos = self._symbols.get((state.exchange, state.market), {})
        return sorted(
            f"{asset}{SPOT_QUOTE}"
            for asset in state.balances
            if asset != SPOT_QUOTE and f"{asset}{SPOT_QUOTE}" in infos
        )

    # ---- working-order index ------------------------------------------------------

    def _track(self, state: AccountState, order: Order, *, waiting: bool = False) -> Working:
        key = self._key(state, order.request.symbol)
        ident = (state.account_id, order.order_id)
        working = self._working.setdefault(key, {}).get(ident)
        if working is None:
            working = self._working[key][ident] = Working(state.account_id, order.order_id)
            self._forget_orders(key)
            self._unlearned[key] = None
        if waiting:
            working.waiting_since_us = self._now_us
            self._waiting_keys[key] = None
        return working

    def _untrack(self, state: AccountState, order: Order) -> None:
        key = self._key(state, order.request.symbol)
        if self._working.get(key, {}).pop((state.account_id, order.order_id), None):
            self._forget_orders(key)

    def _sorted_working(self, key: str) -> list[Working]:
        """The key's working orders in (account, order id) order, so every input touches
        them in the same order whatever order they were placed or restored in (a kept
        list the caller must not change)."""
        by_id = self._working.get(key, {})
        found = self._working_sorted.get(key)
        if found is None:
            found = self._working_sorted[key] = [by_id[ident] for ident in sorted(by_id)]
        return found

    def _forget_orders(self, key: str) -> None:
        """The key's set of working orders changed: what was kept of it is redone."""
        self._working_sorted.pop(key, None)
        self._forget_prices(key)

    def _forget_prices(self, key: str) -> None:
        """An order of the key changed (price, stop, trigger): its summaries are redone."""
        self._reach.pop(key, None)
        self._mark_stops.pop(key, None)

    def _has_mark_stops(self, key: str) -> bool:
        """Whether some working order of the key is a stop watching the mark price."""
        found = self._mark_stops.get(key)
        if found is None:
            found = self._mark_stops[key] = any(
                order is not None and is_waiting_stop(order) and order.request.trigger == "mark"
                for order in (
                    self._accounts[w.account_id].orders.get(w.order_id)
                    for w in self._sorted_working(key)
                )
            )
        return found

    def _reach_of(self, key: str) -> tuple[Decimal | None, Decimal | None] | None:
        """The key's (highest buy limit, lowest sell limit) of its working orders, or None
        when a trade must see every order (some stop watches the last price)."""
        if key in self._reach:
            return self._reach[key]
        high_buy: Decimal | None = None
        low_sell: Decimal | None = None
        reach: tuple[Decimal | None, Decimal | None] | None = None
        for working in self._sorted_working(key):
            order = self._accounts[working.account_id].orders.get(working.order_id)
            if order is None:
                continue
            if is_waiting_stop(order) or order.price is None:
                break  # a stop, or an order without a limit: no shortcut
            if order.request.side == "BUY":
                high_buy = order.price if high_buy is None else max(high_buy, order.price)
            else:
                low_sell = order.price if low_sell is None else min(low_sell, order.price)
        else:
            reach = (high_buy, low_sell)
        self._reach[key] = reach
        return reach

    def _reindex(self, state: AccountState) -> None:
        """Rebuild the working index of one account from its open orders (after a
        restore): a must-take-now order waits again from when it was placed."""
        for key, by_id in self._working.items():
            for ident in [i for i in by_id if i[0] == state.account_id]:
                del by_id[ident]
                self._forget_orders(key)
        for order_id in sorted(state.orders):
            order = state.orders[order_id]
            waiting = must_take_now(order) and not is_waiting_stop(order)
            working = self._track(state, order, waiting=waiting)
            if waiting:
                working.waiting_since_us = order.updated_us
            else:
                self._learn_queue(working, self._books.get(self._key(state, order.request.symbol)))

    def _learn_queue(self, working: Working, book: Book | None) -> None:
        order = self._accounts[working.account_id].orders.get(working.order_id)
        if book is None or order is None or order.price is None or is_waiting_stop(order):
            return
        working.queue.ahead = book.size_at(order.request.side, order.price)

    def _leverage_of(self, state: AccountState, symbol: str) -> int:
        pos = state.positions.get(symbol)
        return pos.leverage if pos is not None else self._settings.default_leverage

    def _trigger_price(self, state: AccountState, symbol: str, trigger: str) -> Decimal | None:
        key = self._key(state, symbol)
        if trigger == "mark":
            mark = self._marks.get(key)
            return None if mark is None else mark.mark_price
        book = self._books.get(key)
        return None if book is None else book.last_price

    def _margin(self, state: AccountState) -> futures.MarginStatus:
        return margin(state, self._context(state))

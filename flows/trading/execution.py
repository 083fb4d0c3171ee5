"""Working paper orders: vetting a new order, taking the book, resting, filling, ending.

`Execution` is the order machinery `flows.trading.engine.PaperEngine` is built on: it
owns the books, the marks and the index of working orders, and turns each decision into
an event applied through the fold at once (`_emit`), so the next decision already sees
its effect. USDⓈ-M margin arithmetic is `flows.trading.futures`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from flows.trading import futures, ledger, rules, spot
from flows.trading.amounts import round_usdt
from flows.trading.book import Book
from flows.trading.matching import Take, taken, walk
from flows.trading.orders import (
    Working,
    acts_as_market,
    ended,
    is_waiting_stop,
    must_take_now,
    new_order,
    refused,
    remaining,
    with_fill,
)
from flows.trading.rules import Rejection
from flows.trading.settings import PaperSettings
from flows.trading.state import AccountState
from flows.trading.views import MarketContext
from schemas.perps import MarkPrice
from schemas.symbols import SymbolInfo
from schemas.trades import Trade
from schemas.trading import (
    AccountEvent,
    Fill,
    LeverageChanged,
    Liquidity,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRepeated,
    OrderRequest,
    OrderStatus,
    OrderUpdated,
)

RECENT_COMMANDS = 10_000
"""Command ids remembered per account to drop a redelivered command (a redelivery is of
a recent command: the consumer resumes from its last committed offset)."""
IOC_EXPIRED = "IOC order could not be filled in full: the rest expired"


class Execution:
    """Books, marks and working orders, and the rules that move orders through them."""

    def __init__(self, settings: PaperSettings) -> None:
        self._settings = settings
        self._stale_us = int(settings.book_stale_after_s * 1_000_000)
        self._wait_us = int(settings.market_order_wait_s * 1_000_000)
        self._symbols: dict[tuple[str, str], dict[str, SymbolInfo]] = {}
        self._books: dict[str, Book] = {}
        self._marks: dict[str, MarkPrice] = {}
        self._accounts: dict[str, AccountState] = {}
        self._working: dict[str, dict[tuple[str, int], Working]] = {}
        self._waiting_keys: dict[str, None] = {}
        self._recent: dict[str, dict[str, None]] = {}
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
        if order is not None and not order.is_open:
            self._untrack(state, order)

    # ---- lookups ------------------------------------------------------------------

    def _info(self, state: AccountState, symbol: str) -> SymbolInfo | None:
        return self._symbols.get((state.exchange, state.market), {}).get(symbol)

    def _key(self, state: AccountState, symbol: str) -> str:
        return f"{state.exchange}:{state.market}:{symbol}"

    def _fresh_book(self, key: str) -> Book | None:
        book = self._books.get(key)
        return book if book is not None and book.is_fresh(self._now_us, self._stale_us) else None

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
        )

    def _held_symbols(self, state: AccountState) -> list[str]:
        if state.market == "usdm":
            return sorted(state.positions)
        infos = self._symbols.get((state.exchange, state.market), {})
        quote = "USDT"
        return sorted(
            f"{asset}{quote}"
            for asset in state.balances
            if asset != quote and f"{asset}{quote}" in infos
        )

    # ---- working-order index ------------------------------------------------------

    def _track(self, state: AccountState, order: Order, *, waiting: bool = False) -> Working:
        key = self._key(state, order.request.symbol)
        ident = (state.account_id, order.order_id)
        working = self._working.setdefault(key, {}).get(ident)
        if working is None:
            working = self._working[key][ident] = Working(state.account_id, order.order_id)
        if waiting:
            working.waiting_since_us = self._now_us
            self._waiting_keys[key] = None
        return working

    def _untrack(self, state: AccountState, order: Order) -> None:
        key = self._key(state, order.request.symbol)
        self._working.get(key, {}).pop((state.account_id, order.order_id), None)

    def _sorted_working(self, key: str) -> list[Working]:
        by_id = self._working.get(key, {})
        if not any(w.waiting_since_us is not None for w in by_id.values()):
            self._waiting_keys.pop(key, None)
        return [by_id[ident] for ident in sorted(by_id)]

    def _reindex(self, state: AccountState) -> None:
        """Rebuild the working index of one account from its open orders (after a
        restore): a must-take-now order waits again from when it was placed."""
        for by_id in self._working.values():
            for ident in [i for i in by_id if i[0] == state.account_id]:
                del by_id[ident]
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

    # ---- placing ------------------------------------------------------------------

    def _place(self, state: AccountState, request: OrderRequest, out: list[AccountEvent]) -> None:
        known = state.client_ids.get(request.client_order_id)
        if known is not None:
            first = state.orders.get(known) or state.closed[known]
            self._emit(state, out, OrderRepeated, order=first)
            return
        order = new_order(state.account_id, state.next_order_id, request, self._now_us)
        rejection = self._vet(state, order)
        if rejection is not None:
            self._emit(state, out, OrderRejected, order=refused(order, rejection, self._now_us))
            return
        if request.reduce_only and request.quantity is not None:
            allowed = futures.reduce_only_qty(
                state.positions.get(request.symbol), request.side, request.quantity
            )
            order = msgspec.structs.replace(order, quantity=allowed)
        if state.market == "usdm" and request.symbol not in state.positions:
            # the log records the leverage a symbol starts at, so a replay never depends
            # on the settings of the engine that replays it
            self._emit(
                state,
                out,
                LeverageChanged,
                symbol=request.symbol,
                leverage=self._settings.default_leverage,
                margin_mode="cross",
            )
        self._emit(state, out, OrderAccepted, order=order)
        self._work(state, order, out)

    def _vet(self, state: AccountState, order: Order) -> Rejection | None:
        request = order.request
        info = self._info(state, request.symbol)
        if info is None or request.exchange != state.exchange or request.market != state.market:
            return rules.INVALID_SYMBOL
        found = self._market_checks(state, info, request, stop_pending=True)
        if found is not None:
            return found
        if request.reduce_only and request.quantity is not None:
            pos = state.positions.get(request.symbol)
            if futures.reduce_only_qty(pos, request.side, request.quantity) <= 0:
                return rules.REDUCE_ONLY
        book = self._fresh_book(self._key(state, request.symbol))
        if request.time_in_force == "FOK" and book is not None and request.quantity is not None:
            levels = book.levels(request.side)
            takes = walk(levels, request.side, qty=request.quantity, limit=request.price)
            if taken(takes) < request.quantity:
                return rules.FOK_NOT_FILLED
        book = self._books.get(self._key(state, request.symbol))
        reference = None if book is None else book.reference(request.side)
        return self._vet_funds(state, order, info, reference)

    def _market_checks(
        self, state: AccountState, info: SymbolInfo, request: OrderRequest, *, stop_pending: bool
    ) -> Rejection | None:
        """The symbol's filters, then whether a post-only order would take and whether a
        stop is already reached, judged against the market now."""
        book = self._books.get(self._key(state, request.symbol))
        reference = None if book is None else book.reference(request.side)
        found = rules.check_filters(info, request, reference)
        if found is not None:
            return found
        best = None if book is None else book.best(request.side)
        posts = request.time_in_force == "GTX" and request.price is not None
        if posts and rules.crosses(request.side, request.price, best):  # type: ignore[arg-type]
            return rules.post_only(state.market)
        if stop_pending and request.stop_price is not None:
            last = self._trigger_price(state, request.symbol, request.trigger)
            if last is not None and rules.stop_reached(
                request.type, request.side, request.stop_price, last
            ):
                return rules.would_trigger(state.market)
        return None

    def _vet_funds(
        self, state: AccountState, order: Order, info: SymbolInfo, reference: Decimal | None
    ) -> Rejection | None:
        request = order.request
        price = request.price or request.stop_price or reference
        if state.market == "spot":
            asset, need = spot.needs(
                info, request.side, request.quantity, request.quote_quantity, price
            )
            symbols = self._symbols.get((state.exchange, state.market), {})
            if need is not None and need > spot.free(state, symbols, asset):
                return rules.INSUFFICIENT_BALANCE
            return None
        if request.reduce_only or price is None:
            return None
        qty = request.quantity
        if qty is None:
            assert request.quote_quantity is not None
            qty = request.quote_quantity / price
        opening = futures.opening_qty(state.positions.get(request.symbol), request.side, qty)
        need = futures.order_margin(opening, price, self._leverage_of(state, request.symbol))
        if need > self._margin(state).available:
            return rules.MARGIN_INSUFFICIENT
        return None

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

    # ---- executing ----------------------------------------------------------------

    def _work(self, state: AccountState, order: Order, out: list[AccountEvent]) -> None:
        """Take what the order may take now, then rest, wait or end the rest."""
        if is_waiting_stop(order):
            self._track(state, order)
            return
        key = self._key(state, order.request.symbol)
        book = self._fresh_book(key)
        if book is None and must_take_now(order):
            self._track(state, order, waiting=True)
            return
        reason = rules.BOOK_EXHAUSTED
        if book is not None and (
            acts_as_market(order)
            or rules.crosses(order.request.side, order.price, book.best(order.request.side))  # type: ignore[arg-type]
        ):
            order, cut = self._take(state, order, book, out)
            reason = cut or reason
        if not order.is_open:
            return
        if must_take_now(order):
            tif = order.request.time_in_force
            why = IOC_EXPIRED if tif == "IOC" and reason == rules.BOOK_EXHAUSTED else reason
            self._end(state, order, "expired", why, out)
            return
        working = self._track(state, order)
        self._learn_queue(working, self._books.get(key))

    def _take(
        self, state: AccountState, order: Order, book: Book, out: list[AccountEvent]
    ) -> tuple[Order, str | None]:
        """Walk the book for the order; returns the order after its fills and why it
        stopped short, when something other than the book cut it."""
        request = order.request
        info = self._info(state, request.symbol)
        assert info is not None
        levels = book.levels(request.side)
        limit = None if acts_as_market(order) else order.price
        if order.quantity is None:
            assert request.quote_quantity is not None
            left = request.quote_quantity - order.filled_quote
            takes = walk(levels, request.side, quote_qty=left, step=info.step_size)
            order = msgspec.structs.replace(order, quantity=order.filled_qty + taken(takes))
        else:
            takes = walk(levels, request.side, qty=remaining(order), limit=limit)
            if request.time_in_force == "FOK" and taken(takes) < remaining(order):
                return self._end(
                    state,
                    order,
                    "expired",
                    rules.FOK_NOT_FILLED.reason,
                    out,
                    code=rules.FOK_NOT_FILLED.code,
                ), None
        takes, cut = self._clip(state, order, info, takes)
        for take in takes:
            order = self._fill(state, order, take.price, take.qty, "taker", take.reference, out)
        return order, cut

    def _clip(
        self, state: AccountState, order: Order, info: SymbolInfo, takes: list[Take]
    ) -> tuple[list[Take], str | None]:
        """Hold the takes to what the account can pay (spot) or may reduce
        (reduce-only); the reason is set when that cut them."""
        request = order.request
        by_qty: Callable[[Take], Decimal] = lambda t: t.qty  # noqa: E731
        if state.market == "usdm":
            if not request.reduce_only:
                return takes, None
            budget = futures.reduce_only_qty(
                state.positions.get(request.symbol), request.side, taken(takes)
            )
            cost, why = by_qty, rules.REDUCE_ONLY.reason
        else:
            symbols = self._symbols.get((state.exchange, state.market), {})
            asset, own = spot.lock_of(order, info)
            budget = spot.free(state, symbols, asset) + own
            cost = (lambda t: t.price * t.qty) if request.side == "BUY" else by_qty
            why = rules.INSUFFICIENT_BALANCE.reason
        kept = _cap(takes, budget, cost, info)
        return kept, (why if taken(kept) < taken(takes) else None)

    def _fill(
        self, state: AccountState, order: Order, price: Decimal, qty: Decimal,
        liquidity: Liquidity, reference: Decimal | None, out: list[AccountEvent],
        *, liquidation: bool = False, fee_rate: Decimal | None = None,
    ) -> Order:  # fmt: skip
        request = order.request
        info = self._info(state, request.symbol)
        assert info is not None
        realized = Decimal(0)
        if state.market == "spot":
            entries, fee, fee_asset = spot.fill_entries(
                state, info, request.side, price, qty, liquidity, self._settings.spot_fees
            )
        else:
            fees = self._settings.usdm_fees
            rate = (
                fee_rate
                if fee_rate is not None
                else (fees.maker if liquidity == "maker" else fees.taker)
            )
            fee, fee_asset = round_usdt(price * qty * rate), info.quote_asset
            pos = copy.copy(state.positions[request.symbol])
            realized, _ = futures.apply_fill(pos, request.side, qty, price)
            kind = "liquidation" if liquidation else "realized_pnl"
            entries = ledger.entries(
                state, [(fee_asset, kind, realized), (fee_asset, "fee", -fee)], request.symbol
            )
        fill = Fill(
            account_id=state.account_id, fill_id=state.next_fill_id, order_id=order.order_id,
            client_order_id=request.client_order_id, exchange=request.exchange,
            market=request.market, symbol=request.symbol, side=request.side, price=price,
            qty=qty, quote_qty=price * qty, fee=fee, fee_asset=fee_asset, liquidity=liquidity,
            time_us=self._now_us, reference_price=reference,
            slippage=Decimal(0) if reference is None else abs(price - reference),
            realized_pnl=realized, liquidation=liquidation,
        )  # fmt: skip
        after = with_fill(order, qty, price, fee, fee_asset, self._now_us)
        self._emit(state, out, OrderFilled, fill=fill, order=after, entries=entries)
        return after

    def _end(
        self, state: AccountState, order: Order, status: OrderStatus, reason: str | None,
        out: list[AccountEvent], *, code: int | None = None,
    ) -> Order:  # fmt: skip
        done = msgspec.structs.replace(ended(order, status, self._now_us, reason), code=code)
        self._emit(state, out, OrderUpdated, order=done)
        return done

    # ---- market-driven ------------------------------------------------------------

    def _on_trade(self, key: str, trade: Trade, out: list[AccountEvent]) -> None:
        for working in self._sorted_working(key):
            state = self._accounts[working.account_id]
            order = state.orders.get(working.order_id)
            if order is None or working.waiting_since_us is not None:
                continue
            request = order.request
            if is_waiting_stop(order):
                assert order.stop_price is not None
                if request.trigger == "last" and rules.stop_reached(
                    request.type, request.side, order.stop_price, trade.price
                ):
                    self._trigger(state, order, out)
                continue
            if order.price is None:
                continue
            qty = min(working.queue.fillable(request.side, order.price, trade), remaining(order))
            if request.reduce_only:
                qty = futures.reduce_only_qty(
                    state.positions.get(request.symbol), request.side, qty
                )
            if qty > 0:
                self._fill(state, order, order.price, qty, "maker", None, out)

    def _trigger(self, state: AccountState, order: Order, out: list[AccountEvent]) -> None:
        """A stop or take-profit reached its stop price: it now works as a market or
        limit order."""
        fired = msgspec.structs.replace(order, triggered=True, updated_us=self._now_us)
        self._emit(state, out, OrderUpdated, order=fired)
        self._work(state, fired, out)


def _cap(takes: list[Take], budget: Decimal, cost: Any, info: SymbolInfo) -> list[Take]:
    """The takes that fit `budget` (`cost` of each take counted against it), the last
    one cut down to a whole step."""
    kept: list[Take] = []
    for take in takes:
        spend = cost(take)
        if spend <= budget:
            kept.append(take)
            budget -= spend
            continue
        qty = rules.floor_to_step(take.qty * budget / spend, info.step_size)
        if qty > 0:
            kept.append(Take(take.price, qty, take.reference))
        break
    return kept

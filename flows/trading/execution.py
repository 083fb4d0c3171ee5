"""Working paper orders: placing, taking the book, resting, filling, triggering, ending.

`Execution` is the order machinery `flows.trading.engine.PaperEngine` is built on. Each
decision becomes an event applied through the fold at once (`Venue._emit`); the matching
rules are `flows.trading.matching`'s, the fill's money `flows.trading.spot`'s (spot) and
`flows.trading.futures`'s (USDⓈ-M).

An account never takes the same liquidity twice: what its taker orders took from a book
is kept per account and symbol (`flows.trading.book.Taken`) until newer book data
replaces it, and a trade is shared among the account's resting orders in price-time
priority (`flows.trading.matching.Sweep`). Accounts do not share either: each account is
its own simulation against the whole market, so one user's paper orders never starve
another's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from typing import Any

import msgspec

from flows.trading import futures, ledger, rules, spot
from flows.trading.amounts import round_usdt
from flows.trading.book import Book
from flows.trading.matching import Sweep, Take, priority, taken, walk
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
from flows.trading.state import AccountState
from flows.trading.vetting import Vetting
from schemas.symbols import SymbolInfo
from schemas.trades import Trade
from schemas.trading import (
    AccountEvent,
    Fill,
    LedgerKind,
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
    Side,
)

IOC_EXPIRED = "IOC order could not be filled in full: the rest expired"


class Execution(Vetting):
    """What happens to an order once it passed its checks, and when the market moves."""

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
        key = self._key(state, request.symbol)
        levels = book.levels_left(request.side, self._taken.get((state.account_id, key)))
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
        if takes:
            self._took(state.account_id, key, book, request.side, takes)
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
            kind: LedgerKind = "liquidation" if liquidation else "realized_pnl"
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
        price = trade.price
        reach = self._reach_of(key)
        if reach is not None:
            high_buy, low_sell = reach
            if (high_buy is None or price > high_buy) and (low_sell is None or price < low_sell):
                return  # above every buy limit, below every sell limit: nothing to do
        by_account = attrgetter("account_id")
        for account_id, workings in groupby(self._sorted_working(key), by_account):
            state = self._accounts[account_id]
            reached: list[tuple[Working, Order]] = []
            stops: list[int] = []
            for working in workings:
                order = state.orders.get(working.order_id)
                if order is None or working.waiting_since_us is not None:
                    continue
                request = order.request
                if is_waiting_stop(order):
                    assert order.stop_price is not None
                    if request.trigger == "last" and rules.stop_reached(
                        request.type, request.side, order.stop_price, price
                    ):
                        stops.append(order.order_id)
                    continue
                limit = order.price
                # A print on the far side of a limit neither fills it nor moves its queue:
                # most resting orders are passed over here, before any arithmetic.
                if limit is None or (price > limit if request.side == "BUY" else price < limit):
                    continue
                reached.append((working, order))
            if reached:
                self._fill_resting(state, trade, reached, out)
            for order_id in stops:
                stop = state.orders.get(order_id)
                if stop is not None:
                    self._trigger(state, stop, out)

    def _fill_resting(
        self, state: AccountState, trade: Trade, reached: list[tuple[Working, Order]],
        out: list[AccountEvent],
    ) -> None:  # fmt: skip
        """Fill one account's resting orders that `trade` reached from the trade's
        quantity, shared in price-time priority on each side (`Sweep`)."""
        sweeps: dict[Side, Sweep] = {}
        for working, order in sorted(reached, key=_priority_of):
            request = order.request
            limit = order.price
            assert limit is not None
            sweep = sweeps.get(request.side)
            if sweep is None:
                sweep = sweeps[request.side] = Sweep.of(request.side, trade)
            qty = min(sweep.reach(limit, working.queue), remaining(order))
            if request.reduce_only and qty > 0:
                pos = state.positions.get(request.symbol)
                if not futures.reduce_only_qty(pos, request.side, qty):
                    # nothing left to reduce: Binance expires a reduce-only order then
                    self._end(state, order, "expired", rules.REDUCE_ONLY.reason, out)
                    continue
                qty = futures.reduce_only_qty(pos, request.side, qty)
            if qty > 0:
                order = self._fill(state, order, limit, qty, "maker", None, out)
            sweep.took(qty, still_open=order.is_open)

    def _trigger(self, state: AccountState, order: Order, out: list[AccountEvent]) -> None:
        """A stop or take-profit reached its stop price: it now works as a market or
        limit order."""
        fired = msgspec.structs.replace(order, triggered=True, updated_us=self._now_us)
        self._emit(state, out, OrderUpdated, order=fired)
        self._work(state, fired, out)


def _priority_of(reached: tuple[Working, Order]) -> tuple[Side, Decimal, int]:
    order = reached[1]
    assert order.price is not None
    return (order.request.side, *priority(order.request.side, order.price, order.order_id))


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

"""Vetting a new paper order the way Binance does, each refusal in Binance's words.

The symbol's filters first, then whether the market now makes the order impossible
(a post-only order that would take, a stop already reached, a reduce-only order with
nothing to reduce, a FOK the book cannot fill in full), then the money: free balance on
spot (`flows.trading.spot`), available margin on USDⓈ-M (`flows.trading.futures`).
"""

from __future__ import annotations

from decimal import Decimal

from flows.trading import futures, rules, spot
from flows.trading.matching import taken, walk
from flows.trading.rules import Rejection
from flows.trading.state import AccountState
from flows.trading.venue import Venue
from schemas.symbols import SymbolInfo
from schemas.trading import Order, OrderRequest


class Vetting(Venue):
    """The checks a new or amended order passes before it works."""

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
        key = self._key(state, request.symbol)
        book = self._fresh_book(key)
        if request.time_in_force == "FOK" and book is not None and request.quantity is not None:
            levels = book.levels_left(request.side, self._taken.get((state.account_id, key)))
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
        if price is None:
            price = self._trigger_price(state, request.symbol, "mark")
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

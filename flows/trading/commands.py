"""What each account command does: place, cancel, cancel all, amend, reset, leverage, close.

A command that cannot be carried out answers with Binance's refusal (an `OrderRejected`
for an order, a `CommandRefused` for the rest), e.g. ``-2011 "Unknown order sent."`` for
a cancel of an order that is not open.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from flows.trading import futures, rules, spot
from flows.trading.marks import MarkHandling
from flows.trading.matching import QueuePosition
from flows.trading.orders import STOP_TYPES, new_order, refused, remaining
from flows.trading.rules import Rejection
from flows.trading.state import AccountState
from schemas.trading import (
    AccountEvent,
    AccountReset,
    AmendOrder,
    CancelAll,
    CancelOrder,
    ClosePosition,
    Command,
    CommandRefused,
    InvalidTradingMessage,
    LedgerEntry,
    LeverageChanged,
    Order,
    OrderRejected,
    OrderRequest,
    OrderUpdated,
    PlaceOrder,
    ResetAccount,
    SetLeverage,
    check_request,
)

UNKNOWN_ORDER = Rejection("Unknown order sent.", -2011)
RESET_CANCEL = "canceled by an account reset"
MALFORMED = -1102
"""Binance's code for a mandatory parameter missing or malformed."""


class Commands(MarkHandling):
    """The account commands, on top of the order machinery."""

    def _dispatch(self, state: AccountState, command: Command, out: list[AccountEvent]) -> None:
        handlers = {
            PlaceOrder: self._place_order, CancelOrder: self._cancel, CancelAll: self._cancel_all,
            AmendOrder: self._amend, ResetAccount: self._reset, SetLeverage: self._set_leverage,
            ClosePosition: self._close,
        }  # fmt: skip
        handlers[type(command)](state, command, out)  # type: ignore[operator]

    def _refuse(
        self, state: AccountState, command: Command, reason: str, code: int | None,
        out: list[AccountEvent],
    ) -> None:  # fmt: skip
        kind = str(command.__struct_config__.tag)
        self._emit(state, out, CommandRefused, command=kind, reason=reason, code=code)

    def _place_order(
        self, state: AccountState, command: PlaceOrder, out: list[AccountEvent]
    ) -> None:
        request = command.order
        if request.client_order_id not in state.client_ids:
            try:
                check_request(request)
            except InvalidTradingMessage as exc:
                order = new_order(state.account_id, state.next_order_id, request, self._now_us)
                rejection = Rejection(str(exc), MALFORMED)
                self._emit(state, out, OrderRejected, order=refused(order, rejection, self._now_us))
                return
        self._place(state, request, out)

    def _open_order(self, state: AccountState, client_order_id: str) -> Order | None:
        order_id = state.client_ids.get(client_order_id)
        return None if order_id is None else state.orders.get(order_id)

    def _cancel(self, state: AccountState, command: CancelOrder, out: list[AccountEvent]) -> None:
        order = self._open_order(state, command.client_order_id)
        if order is None:
            self._refuse(state, command, UNKNOWN_ORDER.reason, UNKNOWN_ORDER.code, out)
            return
        self._end(state, order, "canceled", None, out)

    def _cancel_all(self, state: AccountState, command: CancelAll, out: list[AccountEvent]) -> None:
        doomed = [
            state.orders[i] for i in sorted(state.orders)
            if command.symbol is None or state.orders[i].request.symbol == command.symbol
        ]  # fmt: skip
        if not doomed:
            self._refuse(state, command, UNKNOWN_ORDER.reason, UNKNOWN_ORDER.code, out)
        for order in doomed:
            self._end(state, order, "canceled", None, out)

    def _amend(self, state: AccountState, command: AmendOrder, out: list[AccountEvent]) -> None:
        order = self._open_order(state, command.client_order_id)
        if order is None:
            self._refuse(state, command, UNKNOWN_ORDER.reason, UNKNOWN_ORDER.code, out)
            return
        problem = self._amend_problem(state, order, command)
        if problem is not None:
            self._refuse(state, command, problem.reason, problem.code, out)
            return
        amended = msgspec.structs.replace(
            order,
            price=command.price if command.price is not None else order.price,
            stop_price=command.stop_price if command.stop_price is not None else order.stop_price,
            quantity=command.quantity if command.quantity is not None else order.quantity,
            updated_us=self._now_us,
        )
        self._emit(state, out, OrderUpdated, order=amended)
        key = self._key(state, order.request.symbol)
        working = self._working.get(key, {}).get((state.account_id, order.order_id))
        requeue = amended.price != order.price or (amended.quantity or 0) > (order.quantity or 0)
        if working is not None and requeue:
            working.queue = QueuePosition()
            self._unlearned[key] = None
            self._learn_queue(working, self._books.get(key))
        book = self._fresh_book(key)
        if (
            book is not None and amended.price is not None and amended.request.type == "limit"
            and rules.crosses(amended.request.side, amended.price, book.best(amended.request.side))
        ):  # fmt: skip
            self._work(state, amended, out)

    def _amend_problem(
        self, state: AccountState, order: Order, command: AmendOrder
    ) -> Rejection | None:
        request = order.request
        if command.price is not None and order.price is None:
            return Rejection("Parameter 'price' sent when not required.", -1106)
        if command.stop_price is not None and (request.type not in STOP_TYPES or order.triggered):
            return Rejection("Parameter 'stopPrice' sent when not required.", -1106)
        if command.quantity is not None and command.quantity <= order.filled_qty:
            return Rejection(
                "Quantity must be greater than the quantity already filled.", MALFORMED
            )
        checked = msgspec.structs.replace(
            request,
            price=command.price or order.price,
            stop_price=command.stop_price or order.stop_price,
            quantity=command.quantity or order.quantity,
            quote_quantity=None if (command.quantity or order.quantity) else request.quote_quantity,
        )
        info = self._info(state, request.symbol)
        assert info is not None
        found = self._market_checks(state, info, checked, stop_pending=not order.triggered)
        if found is not None:
            return found
        return self._amend_funds(state, order, checked)

    def _amend_funds(
        self, state: AccountState, order: Order, checked: OrderRequest
    ) -> Rejection | None:
        after = msgspec.structs.replace(
            order, price=checked.price, stop_price=checked.stop_price, quantity=checked.quantity
        )
        if state.market == "spot":
            info = self._info(state, order.request.symbol)
            assert info is not None
            symbols = self._symbols.get((state.exchange, state.market), {})
            asset, before = spot.lock_of(order, info)
            _, need = spot.lock_of(after, info)
            if need - before > spot.free(state, symbols, asset):
                return rules.INSUFFICIENT_BALANCE
            return None
        if order.request.reduce_only:
            return None
        leverage = self._leverage_of(state, order.request.symbol)
        price_before = order.price or order.stop_price or Decimal(0)
        price_after = after.price or after.stop_price or Decimal(0)
        extra = futures.order_margin(
            remaining(after), price_after, leverage
        ) - futures.order_margin(remaining(order), price_before, leverage)
        if extra > self._margin(state).available:
            return rules.MARGIN_INSUFFICIENT
        return None

    def _reset(self, state: AccountState, command: ResetAccount, out: list[AccountEvent]) -> None:
        assets = sorted(set(state.balances) | set(command.balances))
        entries = []
        for asset in assets:
            target = command.balances.get(asset, Decimal(0))
            change = target - state.balances.get(asset, Decimal(0))
            if change:
                entries.append(
                    LedgerEntry(asset=asset, kind="reset", amount=change, balance_after=target)
                )
        for order_id in sorted(state.orders):
            self._end(state, state.orders[order_id], "canceled", RESET_CANCEL, out)
        self._emit(state, out, AccountReset, entries=entries)
        self._reindex(state)

    def _set_leverage(
        self, state: AccountState, command: SetLeverage, out: list[AccountEvent]
    ) -> None:
        if state.market != "usdm":
            self._refuse(state, command, "Leverage is only for USDⓈ-M accounts.", None, out)
            return
        pos = state.positions.get(command.symbol)
        info = self._info(state, command.symbol)
        if info is None:
            self._refuse(
                state, command, rules.INVALID_SYMBOL.reason, rules.INVALID_SYMBOL.code, out
            )
            return
        mode = pos.margin_mode if pos is not None else "cross"
        if command.margin_mode != mode:
            if pos is not None and pos.qty:
                reason, code = "Margin type cannot be changed if there exists position.", -4048
                self._refuse(state, command, reason, code, out)
                return
            if any(o.request.symbol == command.symbol for o in state.orders.values()):
                reason, code = "Margin type cannot be changed if there exists open orders.", -4047
                self._refuse(state, command, reason, code, out)
                return
        mark = self._trigger_price(state, command.symbol, "mark")
        notional = Decimal(0) if pos is None else abs(pos.qty) * (mark or pos.entry_price)
        refusal = futures.leverage_error(
            command.leverage, notional, self._settings.margin_tiers, self._settings.max_leverage
        )
        if refusal is not None:
            self._refuse(state, command, refusal.reason, refusal.code, out)
            return
        fields = {"symbol": command.symbol, "leverage": command.leverage}
        self._emit(state, out, LeverageChanged, margin_mode=command.margin_mode, **fields)

    def _close(self, state: AccountState, command: ClosePosition, out: list[AccountEvent]) -> None:
        symbols = [command.symbol] if command.symbol is not None else sorted(state.positions)
        open_ones = [s for s in symbols if s in state.positions and state.positions[s].qty]
        if state.market != "usdm" or not open_ones:
            self._refuse(state, command, rules.REDUCE_ONLY.reason, rules.REDUCE_ONLY.code, out)
            return
        for symbol in open_ones:
            qty = state.positions[symbol].qty
            request = OrderRequest(
                client_order_id=f"close-{command.command_id}-{symbol}", exchange=state.exchange,
                market="usdm", symbol=symbol, side="SELL" if qty > 0 else "BUY", type="market",
                quantity=abs(qty), reduce_only=True,
            )  # fmt: skip
            self._place(state, request, out)

"""What a USDⓈ-M mark price does to paper accounts: funding, mark stops, liquidation.

Funding follows the contract's rule: a position open when a mark arrives with
``time_us >= T``, where T is the ``next_funding_time_us`` the symbol's previous mark
announced, pays (or receives) funding at T once, at the rate and mark price of that
previous mark (the last one before T); `PositionState.last_funding_us` makes it once.

Liquidation: after each mark the accounts holding the symbol are checked with
`flows.trading.futures.to_liquidate`. Each position it names gets a `Liquidated` event,
its open orders on that symbol are canceled, and it is closed by one reduce-only market
order filled at once (`fill.liquidation`) at the price
`flows.trading.futures.close_out_prices` gives: the bankruptcy price (so the account
loses exactly the margin behind the position, not a cent more), or the mark where no
bankruptcy price exists. The closing fill is charged no fee of its own: closing at the
bankruptcy price already takes all the margin behind the position (what lies between the
mark and that price is the venue's, as Binance's insurance fund keeps it), so a fee on
top would take more than the margin and could leave a cross wallet below zero.
"""

from __future__ import annotations

from decimal import Decimal

from flows.trading import futures, rules
from flows.trading.execution import Execution
from flows.trading.orders import is_waiting_stop, new_order
from flows.trading.state import AccountState
from schemas.perps import MarkPrice
from schemas.trading import (
    AccountEvent,
    AccountReset,
    FundingPaid,
    LedgerEntry,
    Liquidated,
    OrderFilled,
    OrderRequest,
)

LIQUIDATION_CANCEL = "canceled by the liquidation of the position"


class MarkHandling(Execution):
    """Marks, funding times and the positions each symbol's mark values."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._announced: dict[str, tuple[int, Decimal | None, Decimal]] = {}
        self._holders: dict[str, dict[str, None]] = {}

    def _after_apply(self, state: AccountState, event: AccountEvent) -> None:
        super()._after_apply(state, event)
        if state.market != "usdm":
            return
        if isinstance(event, OrderFilled):
            key = self._key(state, event.fill.symbol)
            holders = self._holders.setdefault(key, {})
            if state.positions[event.fill.symbol].qty:
                holders[state.account_id] = None
            else:
                holders.pop(state.account_id, None)
        elif isinstance(event, AccountReset):
            for holders in self._holders.values():
                holders.pop(state.account_id, None)

    def _on_mark(self, mark: MarkPrice, out: list[AccountEvent]) -> None:
        key = mark.key
        previous = self._announced.get(key)
        self._marks[key] = mark
        self._announced[key] = (mark.next_funding_time_us, mark.funding_rate, mark.mark_price)
        holders = sorted(self._holders.get(key, {}))
        if previous is not None:
            self._pay_funding(mark, previous, holders, out)
        for working in self._sorted_working(key) if self._has_mark_stops(key) else ():
            state = self._accounts[working.account_id]
            order = state.orders.get(working.order_id)
            if order is None or not is_waiting_stop(order) or order.request.trigger != "mark":
                continue
            assert order.stop_price is not None
            if rules.stop_reached(
                order.request.type, order.request.side, order.stop_price, mark.mark_price
            ):
                self._trigger(state, order, out)
        for account_id in sorted(self._holders.get(key, {})):
            self._liquidate(self._accounts[account_id], out)

    def _pay_funding(
        self,
        mark: MarkPrice,
        previous: tuple[int, Decimal | None, Decimal],
        holders: list[str],
        out: list[AccountEvent],
    ) -> None:
        funding_time, rate, mark_price = previous
        if not funding_time or rate is None or mark.time_us < funding_time:
            return
        for account_id in holders:
            state = self._accounts[account_id]
            pos = state.positions.get(mark.symbol)
            if pos is None or not pos.qty or pos.last_funding_us >= funding_time:
                continue
            amount = futures.funding_amount(pos.qty, mark_price, rate)
            wallet = state.balances.get(futures.MARGIN_ASSET, Decimal(0))
            entry = LedgerEntry(
                asset=futures.MARGIN_ASSET, kind="funding", amount=amount,
                balance_after=wallet + amount, symbol=mark.symbol,
            )  # fmt: skip
            self._emit(
                state, out, FundingPaid, symbol=mark.symbol, funding_time_us=funding_time,
                rate=rate, mark_price=mark_price, position_qty=pos.qty, entry=entry,
            )  # fmt: skip

    def _liquidate(self, state: AccountState, out: list[AccountEvent]) -> None:
        marks = self._context(state).marks
        tiers = self._settings.margin_tiers
        doomed = futures.to_liquidate(state, marks, tiers)
        if not doomed:
            return
        status = self._margin(state)
        prices = futures.close_out_prices(state, marks, tiers)
        for symbol in doomed:
            pos = state.positions[symbol]
            valued = status.positions[symbol]
            if pos.margin_mode == "isolated":
                balance, maintenance = valued.margin_balance, valued.maintenance_margin
            else:
                balance = status.cross_margin_balance
                maintenance = status.cross_maintenance_margin
            self._emit(
                state, out, Liquidated, symbol=symbol, position_qty=pos.qty,
                mark_price=valued.mark_price, margin_balance=balance,
                maintenance_margin=maintenance,
            )  # fmt: skip
            for order_id in sorted(state.orders):
                order = state.orders.get(order_id)
                if order is not None and order.request.symbol == symbol:
                    self._end(state, order, "canceled", LIQUIDATION_CANCEL, out)
            request = OrderRequest(
                client_order_id=f"autoclose-{self._now_us}-{symbol}", exchange=state.exchange,
                market="usdm", symbol=symbol, side="SELL" if pos.qty > 0 else "BUY",
                type="market", quantity=abs(pos.qty), reduce_only=True,
            )  # fmt: skip
            order = new_order(state.account_id, state.next_order_id, request, self._now_us)
            self._fill(
                state,
                order,
                prices[symbol],
                abs(pos.qty),
                "taker",
                None,
                out,
                liquidation=True,
                fee_rate=Decimal(0),
            )

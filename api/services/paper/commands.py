"""Paper trading for signed-in users: the commands (open, reset, place, amend, cancel,
close, leverage) on top of the reads (`api.services.paper.reads`).

Commands go to the paper engine through `api.live.trading.TradingStreams` (Kafka, with a
bounded wait for the answer; `api.services.paper.answers` says what the answer means).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from api.accounts import paper_accounts
from api.accounts.entitlements import Limits
from api.accounts.models import PaperAccount
from api.errors import ApiError, Forbidden, InvalidRequest, Timeout, Unavailable
from api.live.trading import NOT_RUNNING, TradingStreams
from api.services.paper.answers import (
    CommandRefusedError,
    answers_leverage,
    answers_order,
    order_of,
    orders_of,
    placed,
    unexpected,
)
from api.services.paper.models import AmendIn, OrderIn
from api.services.paper.reads import PaperReads
from schemas.topics import symbol_key
from schemas.trades import Market
from schemas.trading import (
    AccountOpened,
    AccountReset,
    AccountView,
    AmendOrder,
    CancelAll,
    CancelOrder,
    ClosePosition,
    InvalidTradingMessage,
    LeverageChanged,
    MarginMode,
    OpenAccount,
    Order,
    OrderRequest,
    PlaceOrder,
    ResetAccount,
    SetLeverage,
    check_request,
)

DEFAULT_BALANCES: dict[str, Decimal] = {"USDT": Decimal(10_000)}
"""What a new or reset account starts with when the caller names no balances."""

INVALID_SYMBOL = -1121
"""Binance's code for a symbol it does not list (``Invalid symbol.``)."""


def _now_us() -> int:
    return time.time_ns() // 1_000


def exchange_for(market: str, keys: Collection[str]) -> str:
    """The exchange a new account of `market` trades against: the one with the most
    symbols of that market on the board (``sim`` on the simulated market).

    Raises:
        Unavailable: When no exchange has symbols of that market yet.
    """
    counts = Counter(
        parts[0] for key in keys if len(parts := key.split(":")) == 3 and parts[1] == market
    )
    if not counts:
        raise Unavailable(f"no {market} market data yet: paper trading follows the board's")
    return min(counts, key=lambda exchange: (-counts[exchange], exchange))


@dataclass(slots=True)
class Paper(PaperReads):
    """Paper trading for one request: the reads, and the commands (arguments as
    `PaperReads`'s)."""

    # -- accounts ------------------------------------------------------------------------

    async def create(
        self,
        user_id: int,
        limits: Limits,
        *,
        name: str,
        market: Market,
        balances: dict[str, Decimal] | None,
    ) -> AccountView:
        """Open a paper account on the board's exchange for `market`.

        Raises:
            Forbidden: `limit_reached` beyond the plan's paper accounts.
            Unavailable: Without the engine, or market data for `market`.
            Timeout: When the engine did not confirm in time (the account is not kept).
        """
        trading = self._trading()
        exchange = exchange_for(market, self.symbol_keys())
        async with self.db.session() as db:
            account = await paper_accounts.add(
                db,
                user_id,
                name=name,
                market=market,
                exchange=exchange,
                limit=limits.paper_accounts,
            )
        command = OpenAccount(
            **self._head(account.id),
            owner=str(user_id),
            name=name,
            market=market,
            exchange=exchange,
            balances=balances or DEFAULT_BALANCES,
        )
        try:
            events = await trading.send(command)
            if not isinstance(events[0], AccountOpened):
                raise unexpected(events[0])
        except (CommandRefusedError, Unavailable, Timeout) as exc:
            # Refused (too many accounts), never sent, or not answered: no account to list.
            async with self.db.session() as db:
                await paper_accounts.remove(db, account.id)
            if isinstance(exc, Timeout):
                raise Timeout(
                    "the paper engine did not confirm the new account in time, so it was not "
                    "opened; try again in a moment"
                ) from None
            raise
        return self._view(account.id, after_command=True)

    async def reset(
        self, account: PaperAccount, balances: dict[str, Decimal] | None
    ) -> AccountView:
        """Cancel every order, drop every position, start again from `balances`."""
        command = ResetAccount(**self._head(account.id), balances=balances or DEFAULT_BALANCES)
        events = await self._trading().send(command)
        if not isinstance(events[0], AccountReset):
            raise unexpected(events[0])
        return self._view(account.id, after_command=True)

    # -- orders --------------------------------------------------------------------------

    async def place(
        self, account: PaperAccount, limits: Limits, body: OrderIn
    ) -> tuple[Order, bool]:
        """Place an order.

        The answer waits for the account view that follows the command's events, so an
        order that executes at once (a market order, a marketable limit, IOC/FOK) comes
        back as its fills left it (``filled``, ``expired``), as Binance's ``RESULT``
        response does, not as ``new``.

        Returns:
            The order as its events left it, and whether its client order id was a repeat
            (then it is the first order with that id, and nothing was placed).

        Raises:
            InvalidRequest: For fields that contradict each other.
            ApiError: `invalid_symbol` (400, ``Invalid symbol.``) for a symbol the
                account's exchange and market do not list.
            Forbidden: `limit_reached` at the plan's open orders.
            OrderRejectedError: When the engine rejects it (400).
        """
        symbol = self._listed(account, body.symbol)
        fields = body.model_dump(exclude={"client_order_id", "symbol"})
        try:
            request = check_request(
                OrderRequest(
                    client_order_id=body.client_order_id or uuid.uuid4().hex,
                    exchange=account.exchange,
                    market=cast(Market, account.market),
                    symbol=symbol,
                    **fields,
                )
            )
        except InvalidTradingMessage as exc:
            raise InvalidRequest(f"body: {exc}") from None
        if request.type != "market":
            view = self._latest(account.id)
            open_orders = 0 if view is None else len(view.open_orders)
            if open_orders >= limits.paper_open_orders:
                raise Forbidden(
                    f"your plan allows {limits.paper_open_orders} open orders per paper account"
                    f" and this one has {open_orders}: cancel one first, or upgrade",
                    code="limit_reached",
                )
        place = PlaceOrder(**self._head(account.id), order=request)
        return placed(await self._trading().send(place), request.client_order_id)

    async def amend(self, account: PaperAccount, client_order_id: str, body: AmendIn) -> Order:
        """Change a resting order's price, stop price or (lower) quantity."""
        if body.price is None and body.stop_price is None and body.quantity is None:
            raise InvalidRequest("body: give at least one of price, stop_price and quantity")
        command = AmendOrder(
            **self._head(account.id),
            client_order_id=client_order_id,
            price=body.price,
            stop_price=body.stop_price,
            quantity=body.quantity,
        )
        return order_of((await self._trading().send(command, answers_order))[-1])

    async def cancel(self, account: PaperAccount, client_order_id: str) -> Order:
        """Cancel one open order (a refusal, e.g. ``Unknown order sent.``, is a 400)."""
        command = CancelOrder(**self._head(account.id), client_order_id=client_order_id)
        return order_of((await self._trading().send(command, answers_order))[-1])

    async def cancel_all(self, account: PaperAccount, symbol: str | None) -> list[Order]:
        """Cancel every open order of the account, or of one symbol; the canceled orders."""
        symbol = symbol.strip().upper() if symbol else None
        open_orders = self._view(account.id).open_orders
        if not any(symbol in (None, o.request.symbol) for o in open_orders):
            return []  # nothing to cancel: the engine would change nothing
        command = CancelAll(**self._head(account.id), symbol=symbol)
        return orders_of(await self._trading().send(command))

    # -- positions -----------------------------------------------------------------------

    async def close(self, account: PaperAccount, symbol: str | None) -> list[Order]:
        """Close one position (`symbol`) or all, with reduce-only market orders; those
        orders, as the engine last left them."""
        symbol = symbol.strip().upper() if symbol else None
        positions = self._view(account.id).positions
        if not any(symbol in (None, p.symbol) and p.qty for p in positions):
            return []  # nothing to close
        command = ClosePosition(**self._head(account.id), symbol=symbol)
        return orders_of(await self._trading().send(command))

    async def leverage(
        self, account: PaperAccount, symbol: str, leverage: int, margin_mode: MarginMode
    ) -> LeverageChanged:
        """Set a USDⓈ-M symbol's leverage and margin mode.

        Raises:
            InvalidRequest: On a spot account, or for a symbol it does not list.
            CommandRefusedError: When the engine refuses (e.g. a mode change with a
                position open).
        """
        if account.market != "usdm":
            raise InvalidRequest("leverage is for USDⓈ-M accounts only")
        command = SetLeverage(
            **self._head(account.id),
            symbol=self._listed(account, symbol),
            leverage=leverage,
            margin_mode=margin_mode,
        )
        event = (await self._trading().send(command, answers_leverage))[-1]
        if not isinstance(event, LeverageChanged):
            raise unexpected(event)
        return event

    # -- plumbing ------------------------------------------------------------------------

    def _trading(self) -> TradingStreams:
        if self.trading is None or not self.trading.running:
            raise Unavailable(NOT_RUNNING)
        return self.trading

    @staticmethod
    def _head(account_id: str) -> dict[str, Any]:
        """What every command carries: a fresh command id, the account, the send time."""
        return {"command_id": str(uuid.uuid4()), "account_id": account_id, "sent_us": _now_us()}

    def _listed(self, account: PaperAccount, symbol: str) -> str:
        """The symbol as the exchange spells it, when the account's market lists it.

        Raises:
            ApiError: `invalid_symbol` (400, Binance's ``Invalid symbol.``, -1121).
        """
        symbol = symbol.strip().upper()
        if symbol_key(account.exchange, account.market, symbol) not in self.symbol_keys():
            raise ApiError(
                "Invalid symbol.", code="invalid_symbol", extra={"binance_code": INVALID_SYMBOL}
            )
        return symbol

"""Paper trading for signed-in users: their accounts, orders, fills, positions and equity.

Commands go to the paper engine through `api.live.trading.TradingStreams` (Kafka, with a
bounded wait for the answer); the latest state of an account is the view the engine last
published; history (orders, fills, the equity curve) is read from ClickHouse
``paper_orders``, ``paper_fills`` and ``paper_ledger``. Ownership is the accounts
registry's (`api.accounts.paper_accounts`): another user's account is a 404.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import msgspec
from clickhouse_connect.driver.exceptions import ClickHouseError

from api.accounts import paper_accounts
from api.accounts.db import AccountsDb
from api.accounts.entitlements import Limits
from api.accounts.models import PaperAccount
from api.errors import ApiError, Forbidden, InvalidRequest, Timeout, Unavailable
from api.live.trading import NOT_RUNNING, TradingStreams
from api.services.paper_models import AmendIn, OrderIn
from api.store import Store
from schemas.decimals import plain
from schemas.topics import symbol_key
from schemas.trades import Market
from schemas.trading import (
    AccountEvent,
    AccountOpened,
    AccountReset,
    AccountView,
    AmendOrder,
    CancelAll,
    CancelOrder,
    ClosePosition,
    CommandRefused,
    Fill,
    InvalidTradingMessage,
    LeverageChanged,
    MarginMode,
    OpenAccount,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRepeated,
    OrderRequest,
    OrderUpdated,
    PlaceOrder,
    Position,
    ResetAccount,
    SetLeverage,
    check_request,
    encode,
)

logger = logging.getLogger(__name__)

DEFAULT_BALANCES: dict[str, Decimal] = {"USDT": Decimal(10_000)}
"""What a new or reset account starts with when the caller names no balances."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
"""Orders or fills one history request returns at most."""

MAX_EQUITY_POINTS = 20_000
"""Points of the equity curve one request returns at most (the latest of the range):
two weeks of one valuation a minute."""

INVALID_SYMBOL = -1121
"""Binance's code for a symbol it does not list (``Invalid symbol.``)."""


class OrderRejectedError(ApiError):
    """The venue rejected an order: Binance's wording, its code, and the order."""

    status = 400
    code = "order_rejected"

    def __init__(self, order: Order) -> None:
        super().__init__(
            order.reason or "Order rejected.",
            extra={"binance_code": order.code, "order": _plain_json(order)},
        )


class CommandRefusedError(ApiError):
    """The venue refused a command that is not an order (an unknown order to cancel,
    a leverage it does not allow)."""

    status = 400
    code = "command_refused"

    def __init__(self, refused: CommandRefused) -> None:
        super().__init__(refused.reason, extra={"binance_code": refused.code})


def _plain_json(value: object) -> Any:
    return msgspec.json.decode(encode(value))


def _now_us() -> int:
    return time.time_ns() // 1_000


_ORDERS_SQL = """
SELECT order_id, client_order_id, exchange, market, symbol, side, type, time_in_force, trigger,
       reduce_only, quantity, quote_quantity, price, stop_price, status, filled_qty, filled_quote,
       fees, fee_asset, triggered, reason, code,
       toUnixTimestamp64Micro(created) AS created_us, toUnixTimestamp64Micro(updated) AS updated_us
FROM {database:Identifier}.paper_orders FINAL
WHERE account_id = {account:String} AND ({symbol:String} = '' OR symbol = {symbol:String})
ORDER BY created DESC, order_id DESC
LIMIT {limit:UInt32}
"""

_FILLS_SQL = """
SELECT fill_id, order_id, client_order_id, exchange, market, symbol, side, price, qty, quote_qty,
       fee, fee_asset, liquidity, reference_price, slippage, realized_pnl, liquidation,
       toUnixTimestamp64Micro(time) AS time_us
FROM {database:Identifier}.paper_fills FINAL
WHERE account_id = {account:String} AND ({symbol:String} = '' OR symbol = {symbol:String})
ORDER BY time DESC, fill_id DESC
LIMIT {limit:UInt32}
"""

_EQUITY_SQL = """
SELECT toUnixTimestamp64Milli(time) AS time_ms, equity
FROM {database:Identifier}.paper_ledger FINAL
WHERE account_id = {account:String} AND equity IS NOT NULL
  AND time >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
  AND time < fromUnixTimestamp64Milli({end:Int64}, 'UTC')
ORDER BY time DESC, seq DESC, idx DESC
LIMIT {limit:UInt32}
"""

_REQUEST_FIELDS = frozenset(OrderRequest.__struct_fields__)
"""The ``paper_orders`` columns that are the order's request (`price` and `stop_price` are
the working ones too)."""


def _fields(account_id: str, columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    pairs = zip(columns, row, strict=True)
    fields = {c: plain(v) if isinstance(v, Decimal) else v for c, v in pairs}
    fields["account_id"] = account_id
    return fields


def order_of_row(account_id: str, columns: Sequence[str], row: Sequence[Any]) -> Order:
    """An `Order` from a ``paper_orders`` row, its columns named as `Order`'s fields (the
    stored quantity is the working one, and the request's unless it gave a quote amount)."""
    fields = _fields(account_id, columns, row)
    request = {name: fields[name] for name in _REQUEST_FIELDS if name in fields}
    if request.get("quote_quantity") is not None:
        request["quantity"] = None
    fields["request"] = request
    return msgspec.convert(fields, Order, strict=False)


def fill_of_row(account_id: str, columns: Sequence[str], row: Sequence[Any]) -> Fill:
    """A `Fill` from a ``paper_fills`` row, its columns named as `Fill`'s fields."""
    return msgspec.convert(_fields(account_id, columns, row), Fill, strict=False)


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


def _answers_order(event: AccountEvent) -> bool:
    """Whether an event answers an order command (the engine may log others first, e.g.
    the leverage a symbol's first order starts at)."""
    return isinstance(event, OrderAccepted | OrderRejected | OrderRepeated | OrderUpdated)


def _client_id(event: AccountEvent) -> str | None:
    order = getattr(event, "order", None)
    return order.request.client_order_id if isinstance(order, Order) else None


def _placed(events: Sequence[AccountEvent], client_order_id: str) -> tuple[Order, bool]:
    """The placed order as the last of the command's events left it, and whether the
    command was a repeat.

    Raises:
        OrderRejectedError: For a rejection.
        CommandRefusedError: For a refusal.
    """
    answers = [
        event
        for event in events
        if isinstance(event, CommandRefused) or _client_id(event) == client_order_id
    ]
    if not answers:
        raise _unexpected(events[-1])
    first = _order_of(answers[0])
    last = answers[-1]
    order = last.order if isinstance(last, OrderFilled | OrderUpdated) else first
    return order, isinstance(answers[0], OrderRepeated)


def _answers_leverage(event: AccountEvent) -> bool:
    return isinstance(event, LeverageChanged)


def _order_of(event: AccountEvent) -> Order:
    """The order an answer to an order command carries.

    Raises:
        OrderRejectedError: For a rejection.
        CommandRefusedError: For a refusal.
    """
    if isinstance(event, OrderRejected):
        raise OrderRejectedError(event.order)
    if isinstance(event, OrderAccepted | OrderUpdated | OrderRepeated):
        return event.order
    raise _unexpected(event)


def _unexpected(event: AccountEvent) -> ApiError:
    if isinstance(event, CommandRefused):
        return CommandRefusedError(event)
    logger.error("paper engine answered %s to a command", type(event).__name__)
    return Unavailable("the paper engine gave an answer the API does not understand")


def _orders_of(events: Sequence[AccountEvent]) -> list[Order]:
    """The orders a multi-order command touched, each as its last event left it, in the
    order they were first touched."""
    latest: dict[int, Order] = {}
    for event in events:
        if isinstance(event, CommandRefused):
            raise CommandRefusedError(event)
        order = getattr(event, "order", None)
        if isinstance(order, Order):
            latest[order.order_id] = order
    return list(latest.values())


@dataclass(slots=True)
class Paper:
    """Paper trading for one request.

    Args:
        db: The accounts database (the registry).
        trading: Commands, answers and account views; None without live delivery.
        store: ClickHouse, for history.
        symbol_keys: Every symbol key the board knows (``exchange:market:symbol``).
    """

    db: AccountsDb
    trading: TradingStreams | None
    store: Store
    symbol_keys: Callable[[], Collection[str]]

    # -- accounts ------------------------------------------------------------------------

    async def owned(self, user_id: int, account_id: str) -> PaperAccount:
        """One of the user's accounts.

        Raises:
            NotFound: For a missing account or another user's.
        """
        async with self.db.reading() as db:
            return await paper_accounts.owned(db, user_id, account_id)

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
                raise _unexpected(events[0])
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

    async def accounts(self, user_id: int) -> list[AccountView]:
        """The user's accounts, oldest first, as last valued.

        Raises:
            Unavailable: When the engine has not published one of them (it is not
                running, or has not started yet).
        """
        async with self.db.reading() as db:
            rows = await paper_accounts.of_user(db, user_id)
        return [self._view(row.id) for row in rows]

    def account(self, account: PaperAccount) -> AccountView:
        """An account (one of the caller's: see `owned`), as last valued."""
        return self._view(account.id)

    async def reset(
        self, account: PaperAccount, balances: dict[str, Decimal] | None
    ) -> AccountView:
        """Cancel every order, drop every position, start again from `balances`."""
        command = ResetAccount(**self._head(account.id), balances=balances or DEFAULT_BALANCES)
        events = await self._trading().send(command)
        if not isinstance(events[0], AccountReset):
            raise _unexpected(events[0])
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
            view = self.trading.view(account.id) if self.trading is not None else None
            open_orders = 0 if view is None else len(view.open_orders)
            if open_orders >= limits.paper_open_orders:
                raise Forbidden(
                    f"your plan allows {limits.paper_open_orders} open orders per paper account"
                    f" and this one has {open_orders}: cancel one first, or upgrade",
                    code="limit_reached",
                )
        place = PlaceOrder(**self._head(account.id), order=request)
        return _placed(await self._trading().send(place), request.client_order_id)

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
        return _order_of((await self._trading().send(command, _answers_order))[-1])

    async def cancel(self, account: PaperAccount, client_order_id: str) -> Order:
        """Cancel one open order (a refusal, e.g. ``Unknown order sent.``, is a 400)."""
        command = CancelOrder(**self._head(account.id), client_order_id=client_order_id)
        return _order_of((await self._trading().send(command, _answers_order))[-1])

    async def cancel_all(self, account: PaperAccount, symbol: str | None) -> list[Order]:
        """Cancel every open order of the account, or of one symbol; the canceled orders."""
        symbol = symbol.strip().upper() if symbol else None
        open_orders = self._view(account.id).open_orders
        if not any(symbol in (None, o.request.symbol) for o in open_orders):
            return []  # nothing to cancel: the engine would change nothing
        command = CancelAll(**self._head(account.id), symbol=symbol)
        return _orders_of(await self._trading().send(command))

    async def orders(
        self, account: PaperAccount, *, open_only: bool, symbol: str | None, limit: int
    ) -> list[Order]:
        """The account's orders, newest first: the open ones from its latest view, or
        every one from ``paper_orders`` with the view's newer states over them."""
        account_id = account.id
        symbol = symbol.strip().upper() if symbol else ""
        view = self.trading.view(account_id) if self.trading is not None else None
        live = [o for o in (view.open_orders if view else []) if symbol in ("", o.request.symbol)]
        if open_only:
            if view is None:
                self._view(account_id)  # raises: the state is not known
            return sorted(live, key=_newest_first)[:limit]
        columns, rows = await self._query(_ORDERS_SQL, account_id, symbol=symbol, limit=limit)
        history = (order_of_row(account_id, columns, row) for row in rows)
        merged = {order.order_id: order for order in history}
        for order in live:
            stored = merged.get(order.order_id)
            if stored is None or stored.updated_us <= order.updated_us:
                merged[order.order_id] = order
        return sorted(merged.values(), key=_newest_first)[:limit]

    async def fills(self, account: PaperAccount, *, symbol: str | None, limit: int) -> list[Fill]:
        """The account's fills from ``paper_fills``, newest first."""
        symbol = symbol.strip().upper() if symbol else ""
        columns, rows = await self._query(_FILLS_SQL, account.id, symbol=symbol, limit=limit)
        return [fill_of_row(account.id, columns, row) for row in rows]

    # -- positions -----------------------------------------------------------------------

    def positions(self, account: PaperAccount) -> list[Position]:
        """The account's open positions, valued at the mark (none on spot)."""
        return self._view(account.id).positions

    async def close(self, account: PaperAccount, symbol: str | None) -> list[Order]:
        """Close one position (`symbol`) or all, with reduce-only market orders; those
        orders, as the engine last left them."""
        symbol = symbol.strip().upper() if symbol else None
        positions = self._view(account.id).positions
        if not any(symbol in (None, p.symbol) and p.qty for p in positions):
            return []  # nothing to close
        command = ClosePosition(**self._head(account.id), symbol=symbol)
        return _orders_of(await self._trading().send(command))

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
        event = (await self._trading().send(command, _answers_leverage))[-1]
        if not isinstance(event, LeverageChanged):
            raise _unexpected(event)
        return event

    async def equity(
        self, account: PaperAccount, start_ms: int, end_ms: int
    ) -> list[tuple[int, Decimal]]:
        """The account's equity curve from ``paper_ledger`` in [start, end), oldest first
        (the latest `MAX_EQUITY_POINTS` of the range)."""
        _, rows = await self._query(
            _EQUITY_SQL, account.id, start=start_ms, end=end_ms, limit=MAX_EQUITY_POINTS
        )
        return [(int(t), plain(e)) for t, e in reversed(rows)]

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

    def _view(self, account_id: str, *, after_command: bool = False) -> AccountView:
        """The account's latest view.

        Raises:
            Unavailable: No view was ever published (the engine is down or starting).
            Timeout: `after_command`: the engine answered the command, but the view
                after it has not come yet.
        """
        view = self.trading.view(account_id) if self.trading is not None else None
        if view is not None:
            return view
        if after_command:
            raise Timeout(
                "the paper engine confirmed the command but has not published the account's "
                "state yet; look the account up in a moment"
            )
        raise Unavailable(
            f"paper account {account_id} has no state published yet: the paper engine is "
            "not running, or still starting; try again in a few seconds"
        )

    async def _query(
        self, sql: str, account_id: str, **params: Any
    ) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        params.update(database=self.store.database, account=account_id)
        try:
            return await self.store.query(sql, params)
        except ClickHouseError as exc:
            logger.warning("paper history query failed: %s", exc)
            raise Unavailable("paper trading history cannot be read now; try again") from exc


def _newest_first(order: Order) -> tuple[int, int]:
    return (-order.created_us, -order.order_id)

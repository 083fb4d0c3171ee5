"""Paper trading's reads: a user's accounts, and an account's latest state (the view the
engine last published), orders, fills, positions and equity curve.

History (orders, fills, the equity curve) is read from ClickHouse ``paper_orders``,
``paper_fills`` and ``paper_ledger``. Ownership is the accounts registry's
(`api.accounts.paper_accounts`): another user's account is a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from clickhouse_connect.driver.exceptions import ClickHouseError

from api.accounts import paper_accounts
from api.accounts.db import AccountsDb
from api.accounts.models import PaperAccount
from api.errors import Timeout, Unavailable
from api.live.trading import TradingStreams
from api.store import Store
from schemas.decimals import plain
from schemas.trading import AccountView, Fill, Order, OrderRequest, Position

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
"""Orders or fills one history request returns at most."""

MAX_EQUITY_POINTS = 20_000
"""Points of the equity curve one request returns at most (the latest of the range):
two weeks of one valuation a minute."""

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


@dataclass(slots=True)
class PaperReads:
    """Paper trading's reads for one request.

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

    # -- orders and fills ----------------------------------------------------------------

    async def orders(
        self, account: PaperAccount, *, open_only: bool, symbol: str | None, limit: int
    ) -> list[Order]:
        """The account's orders, newest first: the open ones from its latest view, or
        every one from ``paper_orders`` with the view's newer states over them."""
        account_id = account.id
        symbol = symbol.strip().upper() if symbol else ""
        view = self._latest(account_id)
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

    # -- positions and equity ------------------------------------------------------------

    def positions(self, account: PaperAccount) -> list[Position]:
        """The account's open positions, valued at the mark (none on spot)."""
        return self._view(account.id).positions

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

    def _latest(self, account_id: str) -> AccountView | None:
        """The account's latest view, if one was published (and the API follows them)."""
        return self.trading.view(account_id) if self.trading is not None else None

    def _view(self, account_id: str, *, after_command: bool = False) -> AccountView:
        """The account's latest view.

        Raises:
            Unavailable: No view was ever published (the engine is down or starting).
            Timeout: `after_command`: the engine answered the command, but the view
                after it has not come yet.
        """
        view = self._latest(account_id)
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

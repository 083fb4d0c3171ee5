"""`/api/v1/paper/...`: paper trading accounts, orders, fills, positions and equity.

Every route needs a signed-in user and answers only for their own accounts (another
user's is a 404). Orders go to the paper engine, whose answer comes back within a few
seconds (a 504 says when it did not: the order may still be placed, look it up).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from api.accounts.deps import CurrentUser
from api.accounts.entitlements import EntitlementsDep
from api.deps import PaperAccountDep, PaperDep
from api.openapi import TIME_EXAMPLES
from api.services.paper import reads
from api.services.paper.models import (
    AccountIn,
    AccountOut,
    AmendIn,
    EquityPoint,
    FillOut,
    LeverageIn,
    LeverageOut,
    OrderIn,
    OrderOut,
    PositionOut,
    ResetIn,
    wire,
)
from api.services.times import MAX_TIME_MS, TIME_FORMS, TIME_SCHEMA, parse_time


def _error(status_code: str, description: str, code: str, message: str, **extra: Any) -> Any:
    return {
        status_code: {
            "description": description,
            "content": {
                "application/json": {
                    "example": {"error": {"code": code, "message": message, **extra}}
                }
            },
        }
    }


_UNKNOWN = _error(
    "404", "No such paper account of yours", "unknown_account", "no paper account 'a1b2'"
)
_ENGINE = {
    **_error(
        "503",
        "Paper trading is not running, or the account's state is not known yet",
        "unavailable",
        "paper trading is not running in this API process (it has no Kafka)",
    ),
    **_error(
        "504",
        "The paper engine did not answer in time: the command may still be applied",
        "timeout",
        "the paper engine did not answer within 5 s; the command may still be applied: look "
        "the account up before repeating it",
    ),
}
_LIMIT = _error(
    "403",
    "The plan's limit is reached",
    "limit_reached",
    "your plan allows 20 open orders per paper account and this one has 20: cancel one "
    "first, or upgrade",
)
_REFUSED = _error(
    "400",
    "The engine refused the command, in Binance's words and code",
    "command_refused",
    "Unknown order sent.",
    binance_code=-2011,
)
_REJECTED = _error(
    "400",
    "The order was rejected, in Binance's words and code, with the order as rejected; or the "
    "symbol is not listed (`invalid_symbol`, `Invalid symbol.`, -1121)",
    "order_rejected",
    "Filter failure: LOT_SIZE",
    binance_code=-1013,
    order={"order_id": 8, "status": "rejected", "reason": "Filter failure: LOT_SIZE"},
)

router = APIRouter(prefix="/api/v1/paper/accounts", tags=["paper trading"], responses=_ENGINE)
account_router = APIRouter(prefix="/{account_id}", responses=_UNKNOWN)
"""The routes of one of the caller's accounts (`PaperAccountDep`: anyone else's is a 404)."""

ClientOrderId = Annotated[
    str, Path(max_length=36, description="The order's client order id.", examples=["dip-buy-1"])
]
SymbolPath = Annotated[str, Path(max_length=40, examples=["BTCUSDT"])]
SymbolFilter = Annotated[
    str | None, Query(max_length=40, description="Only this symbol.", examples=["BTCUSDT"])
]
Limit = Annotated[
    int, Query(ge=1, le=reads.MAX_LIMIT, description="At most this many, newest first.")
]


def _orders(orders: list[Any]) -> list[OrderOut]:
    return [wire(OrderOut, order) for order in orders]


@router.post("", status_code=201, summary="Open a paper account", responses=_LIMIT)
async def create_account(
    body: AccountIn, user: CurrentUser, entitlements: EntitlementsDep, service: PaperDep
) -> AccountOut:
    """A paper account on `spot` or `usdm`, trading against the exchange the board shows for
    that market, with the balances given (10,000 USDT by default). The plan limits how
    many accounts a user keeps (`GET /api/v1/me/entitlements`).
    """
    view = await service.create(
        user.id,
        entitlements.limits,
        name=body.name,
        market=body.market,
        balances=body.balances,
    )
    return wire(AccountOut, view)


@router.get("", summary="The caller's paper accounts")
async def list_accounts(user: CurrentUser, service: PaperDep) -> list[AccountOut]:
    """Each account as last valued: balances, positions at the mark, open orders, equity,
    realised and unrealised P&L, fees and funding. Oldest account first.
    """
    return [wire(AccountOut, view) for view in await service.accounts(user.id)]


@account_router.get("", summary="A paper account, valued now")
async def get_account(account: PaperAccountDep, service: PaperDep) -> AccountOut:
    """One account's latest view."""
    return wire(AccountOut, service.account(account))


@account_router.post("/reset", summary="Reset a paper account")
async def reset_account(account: PaperAccountDep, body: ResetIn, service: PaperDep) -> AccountOut:
    """Cancels every order, drops every position and starts again from the balances given
    (10,000 USDT by default). The history stays.
    """
    return wire(AccountOut, await service.reset(account, body.balances))


@account_router.post(
    "/orders",
    status_code=201,
    summary="Place an order",
    responses={
        200: {"description": "A repeated client order id: the first order with it"},
        **_REJECTED,
        **_LIMIT,
    },
)
async def place_order(
    account: PaperAccountDep,
    body: OrderIn,
    entitlements: EntitlementsDep,
    service: PaperDep,
    response: Response,
) -> OrderOut:
    """Binance's order types, checked against the symbol's filters (tick and step size, minimum
    and maximum quantity, minimum notional) with Binance's wording. Answers the order as
    accepted (201); its fills follow on the `trading` stream. A `client_order_id` that
    was used already answers 200 with that first order, and places nothing. Decimals may
    be strings (exact) or numbers.
    """
    order, repeated = await service.place(account, entitlements.limits, body)
    if repeated:
        response.status_code = 200
    return wire(OrderOut, order)


@account_router.patch("/orders/{client_order_id}", summary="Amend an order", responses=_REFUSED)
async def amend_order(
    account: PaperAccountDep, client_order_id: ClientOrderId, body: AmendIn, service: PaperDep
) -> OrderOut:
    """New price, stop price or (lower) quantity; a new price or a larger quantity loses the
    order's place in the queue, as on Binance.
    """
    return wire(OrderOut, await service.amend(account, client_order_id, body))


@account_router.delete("/orders/{client_order_id}", summary="Cancel an order", responses=_REFUSED)
async def cancel_order(
    account: PaperAccountDep, client_order_id: ClientOrderId, service: PaperDep
) -> OrderOut:
    """Cancel one open order; the order as canceled."""
    return wire(OrderOut, await service.cancel(account, client_order_id))


@account_router.delete("/orders", summary="Cancel every open order")
async def cancel_all(
    account: PaperAccountDep, service: PaperDep, symbol: SymbolFilter = None
) -> list[OrderOut]:
    """Of the account, or of one symbol; answers the orders canceled."""
    return _orders(await service.cancel_all(account, symbol))


@account_router.get("/orders", summary="Open orders, or the order history")
async def list_orders(
    account: PaperAccountDep,
    service: PaperDep,
    status: Annotated[Literal["open", "all"], Query()] = "open",
    symbol: SymbolFilter = None,
    limit: Limit = reads.DEFAULT_LIMIT,
) -> list[OrderOut]:
    """`status=open` (the default): the open orders as the engine last published them.
    `status=all`: every order, from ClickHouse `paper_orders`, newest first.
    """
    open_only = status == "open"
    return _orders(await service.orders(account, open_only=open_only, symbol=symbol, limit=limit))


@account_router.get("/fills", summary="Fills, newest first")
async def list_fills(
    account: PaperAccountDep,
    service: PaperDep,
    symbol: SymbolFilter = None,
    limit: Limit = reads.DEFAULT_LIMIT,
) -> list[FillOut]:
    """From ClickHouse `paper_fills`: price, quantity, fee and its asset, maker or taker, the
    reference price and slippage of taker fills, realised P&L, liquidations.
    """
    fills = await service.fills(account, symbol=symbol, limit=limit)
    return [wire(FillOut, fill) for fill in fills]


@account_router.get("/positions", summary="Open positions at the mark")
async def list_positions(account: PaperAccountDep, service: PaperDep) -> list[PositionOut]:
    """USDⓈ-M positions with unrealised P&L on the mark price, realised P&L, fees, funding,
    maintenance margin and liquidation price (none on spot accounts).
    """
    return [wire(PositionOut, p) for p in service.positions(account)]


@account_router.post("/positions/close", summary="Close every position", responses=_REFUSED)
async def close_positions(account: PaperAccountDep, service: PaperDep) -> list[OrderOut]:
    """With reduce-only market orders; answers them (none without positions)."""
    return _orders(await service.close(account, None))


@account_router.post("/positions/{symbol}/close", summary="Close one position", responses=_REFUSED)
async def close_position(
    account: PaperAccountDep, symbol: SymbolPath, service: PaperDep
) -> list[OrderOut]:
    """With a reduce-only market order; answers it (none without a position)."""
    return _orders(await service.close(account, symbol))


@account_router.put("/leverage/{symbol}", summary="Set leverage and margin", responses=_REFUSED)
async def set_leverage(
    account: PaperAccountDep, symbol: SymbolPath, body: LeverageIn, service: PaperDep
) -> LeverageOut:
    """USDⓈ-M only: 1-125 (capped by the engine's settings), isolated or cross. The margin mode
    cannot change while the symbol has a position or open orders.
    """
    changed = await service.leverage(account, symbol, body.leverage, body.margin_mode)
    return LeverageOut(
        symbol=changed.symbol, leverage=changed.leverage, margin_mode=changed.margin_mode
    )


@account_router.get(
    "/equity",
    summary="The equity curve",
    description="From ClickHouse `paper_ledger`: the equity after each event that knew it and "
    f"once a minute while the account holds positions, oldest first (the latest "
    f"{reads.MAX_EQUITY_POINTS} of the range).",
)
async def get_equity(
    account: PaperAccountDep,
    service: PaperDep,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description=f"At or after this ({TIME_FORMS}).",
            json_schema_extra=TIME_SCHEMA,
            examples=TIME_EXAMPLES,
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            description=f"Before this ({TIME_FORMS}); now by default.",
            json_schema_extra=TIME_SCHEMA,
        ),
    ] = None,
) -> list[EquityPoint]:
    """Equity over time."""
    start_ms = parse_time("from", start) if start is not None else 0
    end_ms = parse_time("to", end) if end is not None else MAX_TIME_MS
    points = await service.equity(account, start_ms, end_ms)
    return [EquityPoint(time_ms=t, equity=str(e)) for t, e in points]


router.include_router(account_router)

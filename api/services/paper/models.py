"""Paper trading as the REST API reads and writes it: request bodies, and response models
that mirror the wire forms of `schemas.trading` (field names as there, decimals as
exact strings, times in microseconds) so the OpenAPI document shows them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from schemas.trading import encode

Dec = Annotated[str, Field(description="An exact decimal, as a string.", examples=["0.01"])]
OptDec = Annotated[str | None, Field(description="An exact decimal, as a string.")]

Asset = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,20}$")]
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
"""A decimal a body may give as a string (``"0.01"``, exact) or a number."""

Balances = Annotated[
    dict[Asset, PositiveDecimal],
    Field(
        min_length=1,
        max_length=20,
        description="Starting balance per asset; 10,000 USDT when left out.",
        examples=[{"USDT": "10000"}],
    ),
]

M = TypeVar("M", bound=BaseModel)


def _example(example: JsonDict) -> ConfigDict:
    """A model's configuration that shows `example` in the OpenAPI document."""
    return ConfigDict(json_schema_extra={"examples": [example]})


def wire(model: type[M], value: object) -> M:
    """A response model from a `schemas.trading` message, through its wire form (so
    decimals are the exact strings every stream sends)."""
    return model.model_validate_json(encode(value))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Body):
    """A new paper account."""

    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
        ),
    ] = Field(examples=["scalping"])
    market: Literal["spot", "usdm"] = Field(
        description="`spot` (balances per asset) or `usdm` (USDT-margined perpetuals)."
    )
    balances: Balances | None = None


class ResetIn(_Body):
    """Start an account again: every order canceled, every position dropped."""

    balances: Balances | None = None


class OrderIn(_Body):
    """An order, as Binance takes it; the account names the exchange and market."""

    client_order_id: Annotated[str, StringConstraints(min_length=1, max_length=36)] | None = Field(
        default=None,
        description="Your id for the order, the idempotency key: a repeat returns the first "
        "order (200) and places nothing. Made up by the API when left out.",
    )
    symbol: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        examples=["BTCUSDT"]
    )
    side: Literal["BUY", "SELL"]
    type: Literal["market", "limit", "stop_market", "stop_limit", "take_profit_market"]
    time_in_force: Literal["GTC", "IOC", "FOK", "GTX"] = Field(
        default="GTC", description="`GTX` is post-only: an order that would take is rejected."
    )
    quantity: PositiveDecimal | None = Field(default=None, description="In the base asset.")
    quote_quantity: PositiveDecimal | None = Field(
        default=None, description="Market orders: spend or receive this much of the quote asset."
    )
    price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None
    trigger: Literal["last", "mark"] = Field(
        default="last", description="What a stop watches: `mark` on USDⓈ-M only."
    )
    reduce_only: bool = False


class AmendIn(_Body):
    """New values for a resting order (at least one)."""

    price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None
    quantity: PositiveDecimal | None = Field(default=None, description="Lower only.")


class LeverageIn(_Body):
    """A USDⓈ-M symbol's leverage and margin mode."""

    leverage: int = Field(ge=1, le=125, examples=[10])
    margin_mode: Literal["isolated", "cross"] = "cross"


# ---- responses: the wire forms --------------------------------------------------------


class _OrderOf(BaseModel):
    """Which order, of which symbol, on which side."""

    client_order_id: str
    exchange: str
    market: Literal["spot", "usdm"]
    symbol: str
    side: Literal["BUY", "SELL"]


class OrderRequestOut(_OrderOf):
    """What was asked for."""

    type: str
    time_in_force: str = "GTC"
    quantity: OptDec = None
    quote_quantity: OptDec = None
    price: OptDec = None
    stop_price: OptDec = None
    trigger: str = "last"
    reduce_only: bool = False


class OrderOut(BaseModel):
    """An order after its latest event (`schemas.trading.Order`)."""

    model_config = _example(
        {
            "account_id": "6f1c2a9e-0c7b-4f7e-9a51-2b8f3d7e4c10",
            "order_id": 7,
            "request": {
                "client_order_id": "dip-buy-1",
                "exchange": "binance",
                "market": "usdm",
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "limit",
                "time_in_force": "GTC",
                "quantity": "0.010",
                "price": "56000.0",
            },
            "status": "new",
            "created_us": 1723161300000000,
            "updated_us": 1723161300000000,
            "filled_qty": "0",
            "filled_quote": "0",
            "fees": "0",
            "fee_asset": "",
            "triggered": False,
            "quantity": "0.010",
            "price": "56000.0",
        }
    )

    account_id: str
    order_id: int
    request: OrderRequestOut
    status: Literal["new", "partially_filled", "filled", "canceled", "rejected", "expired"]
    created_us: int
    updated_us: int
    filled_qty: Dec = "0"
    filled_quote: Dec = "0"
    fees: Dec = "0"
    fee_asset: str = ""
    triggered: bool = False
    quantity: OptDec = None
    price: OptDec = None
    stop_price: OptDec = None
    reason: str | None = Field(default=None, description="Why, in Binance's words.")
    code: int | None = Field(default=None, description="Binance's error code, e.g. -1013.")


class FillOut(_OrderOf):
    """One execution (`schemas.trading.Fill`)."""

    model_config = _example(
        {
            "account_id": "6f1c2a9e-0c7b-4f7e-9a51-2b8f3d7e4c10",
            "fill_id": 12,
            "order_id": 7,
            "client_order_id": "dip-buy-1",
            "exchange": "binance",
            "market": "usdm",
            "symbol": "BTCUSDT",
            "side": "BUY",
            "price": "56000.0",
            "qty": "0.010",
            "quote_qty": "560.0000",
            "fee": "0.11200000",
            "fee_asset": "USDT",
            "liquidity": "maker",
            "time_us": 1723161312000000,
            "slippage": "0",
            "realized_pnl": "0",
            "liquidation": False,
        }
    )

    account_id: str
    fill_id: int
    order_id: int
    price: Dec
    qty: Dec
    quote_qty: Dec
    fee: Dec
    fee_asset: str
    liquidity: Literal["maker", "taker"]
    time_us: int
    reference_price: OptDec = Field(
        default=None, description="Best opposite price when a taker order started to execute."
    )
    slippage: Dec = Field(default="0", description="Against the trader, per base unit.")
    realized_pnl: Dec = "0"
    liquidation: bool = False


class PositionOut(BaseModel):
    """A USDⓈ-M position valued at the mark (`schemas.trading.Position`)."""

    model_config = _example(
        {
            "exchange": "binance",
            "symbol": "BTCUSDT",
            "qty": "0.010",
            "entry_price": "56000.0",
            "leverage": 20,
            "margin_mode": "isolated",
            "isolated_margin": "28.0000",
            "mark_price": "56250.0",
            "unrealized_pnl": "2.5000",
            "realized_pnl": "0",
            "fees": "0.11200000",
            "funding": "-0.0562",
            "maintenance_margin": "2.2500",
            "liquidation_price": "53480.5",
        }
    )

    exchange: str
    symbol: str
    qty: Dec = Field(description="Signed: positive long, negative short.")
    entry_price: Dec
    leverage: int
    margin_mode: Literal["isolated", "cross"]
    isolated_margin: Dec = "0"
    mark_price: OptDec = None
    unrealized_pnl: Dec = "0"
    realized_pnl: Dec = "0"
    fees: Dec = "0"
    funding: Dec = "0"
    maintenance_margin: Dec = "0"
    liquidation_price: OptDec = None


class BalanceOut(BaseModel):
    """One asset: `free`, and `locked` by open orders or as margin."""

    asset: str
    free: Dec
    locked: Dec = "0"


class AccountOut(BaseModel):
    """An account valued at the market (`schemas.trading.AccountView`)."""

    model_config = _example(
        {
            "account_id": "6f1c2a9e-0c7b-4f7e-9a51-2b8f3d7e4c10",
            "owner": "1",
            "name": "scalping",
            "market": "usdm",
            "exchange": "binance",
            "venue": "paper",
            "seq": 1,
            "time_us": 1723161300000000,
            "balances": [{"asset": "USDT", "free": "10000", "locked": "0"}],
            "positions": [],
            "open_orders": [],
            "equity": "10000",
            "unrealized_pnl": "0",
            "realized_pnl": "0",
            "fees": "0",
            "funding": "0",
            "margin_balance": "10000",
            "maintenance_margin": "0",
            "available": "10000",
        }
    )

    account_id: str
    owner: str
    name: str
    market: Literal["spot", "usdm"]
    exchange: str
    venue: Literal["paper", "binance"]
    seq: int = Field(description="The last event of the account's log this view includes.")
    time_us: int = Field(description="Market time it was valued at.")
    balances: list[BalanceOut]
    positions: list[PositionOut]
    open_orders: list[OrderOut]
    equity: Dec
    unrealized_pnl: Dec = "0"
    realized_pnl: Dec = "0"
    fees: Dec = "0"
    funding: Dec = "0"
    margin_balance: Dec = "0"
    maintenance_margin: Dec = "0"
    available: Dec = "0"


class LeverageOut(BaseModel):
    """A USDⓈ-M symbol's position settings."""

    symbol: str
    leverage: int
    margin_mode: Literal["isolated", "cross"]


class EquityPoint(BaseModel):
    """The account's equity at a time."""

    time_ms: int
    equity: Dec

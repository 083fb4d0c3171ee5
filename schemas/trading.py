"""Orders, fills, positions and account events: one model for every venue (paper, binance).

Commands go to ``tr.orders.v1`` and results to ``tr.events.v1``, both keyed by the
account id, so one account's commands and events stay ordered in one partition. An
account's state is a fold of its events (`AccountEvent`, in `seq` order): a replay of
them rebuilds its balances, positions and orders exactly. Views of that state (equity,
positions valued at the mark, open orders) go to ``tr.accounts.v1`` as `AccountView`;
they are not part of the fold.

Decimals are exact (``Decimal`` in memory, decimal strings on the wire). Times are
microseconds since the epoch: an event's ``time_us`` is the engine's market time (the
exchange time of the last market record it had applied), never wall time, so a replay
gives the same times. Statuses, types and reasons follow Binance's.

A command names its order by the caller's ``client_order_id``: it is the idempotency
key, and a repeat of it returns the first result instead of placing a second order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from schemas.errors import SchemaError
from schemas.trades import Market

Venue = Literal["paper", "binance"]
"""Where an account's orders execute: the paper engine or the exchange itself."""

Side = Literal["BUY", "SELL"]
OrderType = Literal["market", "limit", "stop_market", "stop_limit", "take_profit_market"]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTX"]
"""``GTX`` is post-only: an order that would take liquidity is rejected."""
TriggerPrice = Literal["last", "mark"]
"""What a stop or take-profit watches: the last trade price or (USDⓈ-M) the mark price."""
OrderStatus = Literal["new", "partially_filled", "filled", "canceled", "rejected", "expired"]
OPEN_STATUSES: frozenset[str] = frozenset({"new", "partially_filled"})
"""Statuses of an order that may still fill."""
MarginMode = Literal["isolated", "cross"]
Liquidity = Literal["maker", "taker"]
LedgerKind = Literal["deposit", "reset", "trade", "fee", "realized_pnl", "funding", "liquidation"]
"""Why a balance moved (`LedgerEntry.kind`)."""


class OrderRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the caller asks for, before any venue looked at it.

    Exactly one of `quantity` (base asset) and `quote_quantity` (quote asset, market
    orders only: spend or receive this much) is set. `price` is required for ``limit``
    and ``stop_limit``; `stop_price` for the stop and take-profit types.
    """

    client_order_id: str
    exchange: str
    market: Market
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce = "GTC"
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trigger: TriggerPrice = "last"
    reduce_only: bool = False


class Order(msgspec.Struct, frozen=True, omit_defaults=True):
    """An order as it stands after its latest event.

    Attributes:
        order_id: The venue's id, unique within the account (the paper engine counts
            from 1).
        request: What was asked for.
        status: Where it is in ``new`` → ``partially_filled`` → ``filled`` |
            ``canceled`` | ``rejected`` | ``expired``.
        filled_qty: Base quantity filled so far.
        filled_quote: Quote amount filled so far (sum of price × quantity, exact).
        fees: Fees paid so far, in `fee_asset`.
        triggered: Whether a stop or take-profit has triggered (it then works as a
            market or limit order).
        reason: Why it was rejected, canceled or expired, in Binance's words
            (e.g. ``Filter failure: LOT_SIZE``).
        code: Binance's error code for a rejection (e.g. -1013), when it has one.
        created_us: Market time it was accepted at.
        updated_us: Market time of its latest change.
        quantity: The working quantity (the request's, or for a quote-amount order the
            base quantity it came to; an amend may lower it).
        price: The working limit price (an amend may change it).
        stop_price: The working stop price.
    """

    account_id: str
    order_id: int
    request: OrderRequest
    status: OrderStatus
    created_us: int
    updated_us: int
    filled_qty: Decimal = Decimal(0)
    filled_quote: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    fee_asset: str = ""
    triggered: bool = False
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    reason: str | None = None
    code: int | None = None

    @property
    def is_open(self) -> bool:
        """Whether it may still fill."""
        return self.status in OPEN_STATUSES

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price, exact to the quote's precision; None before a fill."""
        if not self.filled_qty:
            return None
        return self.filled_quote / self.filled_qty


class Fill(msgspec.Struct, frozen=True, omit_defaults=True):
    """One execution of one order.

    Attributes:
        fill_id: Unique within the account, counting from 1.
        price: Execution price.
        qty: Base quantity executed.
        quote_qty: price × qty, exact.
        fee: Fee charged, in `fee_asset` (the quote asset on USDⓈ-M; on spot the asset
            received, as Binance charges without BNB).
        liquidity: ``maker`` when it rested on the book, ``taker`` when it crossed.
        reference_price: The best opposite price when the order started to execute (for
            a taker fill), so `slippage` can be read: the paper engine walks the book.
        slippage: How far this fill's price is from `reference_price`, against the
            trader, in quote units per base unit (0 at the top of the book).
        realized_pnl: P&L this fill realised on a USDⓈ-M position (before fees), 0 on
            spot and on a fill that opens or adds.
        liquidation: Whether the venue closed the position (a liquidation fill).
        time_us: Market time of the execution (the exchange's, for a live venue).
    """

    account_id: str
    fill_id: int
    order_id: int
    client_order_id: str
    exchange: str
    market: Market
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    time_us: int
    reference_price: Decimal | None = None
    slippage: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    liquidation: bool = False


class Position(msgspec.Struct, frozen=True, omit_defaults=True):
    """A USDⓈ-M position (one-way mode: one per symbol), valued at the mark.

    Attributes:
        qty: Signed size in the base asset: positive long, negative short.
        entry_price: Average entry price of the open size.
        leverage: 1–125.
        margin_mode: ``isolated`` or ``cross``.
        isolated_margin: Margin set aside for an isolated position (wallet part plus
            realised changes), 0 under cross.
        mark_price: The mark it was valued at (None before the first mark).
        unrealized_pnl: qty × (mark − entry).
        realized_pnl: P&L realised on this symbol since the account opened or reset.
        fees: Fees paid on this symbol.
        funding: Funding received (positive) or paid (negative) on this symbol.
        maintenance_margin: notional × rate of its tier − the tier's amount.
        liquidation_price: Mark price at which it would be liquidated (None when none:
            e.g. a cross long covered by the wallet many times over).
    """

    exchange: str
    symbol: str
    qty: Decimal
    entry_price: Decimal
    leverage: int
    margin_mode: MarginMode
    isolated_margin: Decimal = Decimal(0)
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)
    maintenance_margin: Decimal = Decimal(0)
    liquidation_price: Decimal | None = None


class Balance(msgspec.Struct, frozen=True, omit_defaults=True):
    """One asset of an account: `free` to use, `locked` by open orders (spot) or as
    order and position margin (USDⓈ-M)."""

    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        """Free plus locked."""
        return self.free + self.locked


class LedgerEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One movement of one asset's wallet balance, and the balance after it."""

    asset: str
    kind: LedgerKind
    amount: Decimal
    balance_after: Decimal
    symbol: str = ""


# ---- commands: tr.orders.v1 ----------------------------------------------------------


class _Command(msgspec.Struct, frozen=True, omit_defaults=True, tag_field="kind"):
    """What every command carries.

    Attributes:
        command_id: Chosen by the sender (a UUID), echoed by every event the command
            causes, so the sender can wait for its answer.
        account_id: The account it acts on (also the Kafka key).
        sent_us: Wall time the sender sent it (for latency figures only: the engine
            never reads the clock).
    """

    command_id: str
    account_id: str
    sent_us: int


class OpenAccount(_Command, frozen=True, omit_defaults=True, tag="open"):
    """Open a paper account on one market with starting balances (asset → amount)."""

    owner: str
    name: str
    market: Market
    exchange: str
    balances: dict[str, Decimal]


class ResetAccount(_Command, frozen=True, omit_defaults=True, tag="reset"):
    """Cancel every order, drop every position and start again from these balances."""

    balances: dict[str, Decimal]


class PlaceOrder(_Command, frozen=True, omit_defaults=True, tag="place"):
    """Place an order; a repeated `OrderRequest.client_order_id` returns the first result."""

    order: OrderRequest


class CancelOrder(_Command, frozen=True, omit_defaults=True, tag="cancel"):
    """Cancel one open order, named by its client order id."""

    client_order_id: str


class CancelAll(_Command, frozen=True, omit_defaults=True, tag="cancel_all"):
    """Cancel every open order of the account, or of one symbol when `symbol` is set."""

    symbol: str | None = None


class AmendOrder(_Command, frozen=True, omit_defaults=True, tag="amend"):
    """Change a resting order's price, stop price or (lower) quantity; queue position is
    lost as on Binance when the price changes or the quantity rises."""

    client_order_id: str
    price: Decimal | None = None
    stop_price: Decimal | None = None
    quantity: Decimal | None = None


class SetLeverage(_Command, frozen=True, omit_defaults=True, tag="leverage"):
    """Set a USDⓈ-M symbol's leverage and margin mode (refused while it has a position
    or open orders, when the mode would change)."""

    symbol: str
    leverage: int
    margin_mode: MarginMode


class ClosePosition(_Command, frozen=True, omit_defaults=True, tag="close"):
    """Close one position (`symbol`) or every position (None) with reduce-only market
    orders; their client order ids are ``close-<command_id>-<symbol>``."""

    symbol: str | None = None


Command = (
    OpenAccount | ResetAccount | PlaceOrder | CancelOrder | CancelAll | AmendOrder
    | SetLeverage | ClosePosition
)  # fmt: skip


# ---- events: tr.events.v1 (the fold) ------------------------------------------------


class _Event(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True, tag_field="kind"):
    """What every account event carries.

    Attributes:
        account_id: The account (also the Kafka key).
        seq: Position in the account's log, 1, 2, 3, … with no gap: the fold applies
            them in this order, and a consumer that saw `seq` skips anything at or below.
        time_us: Market time it happened at.
        command_id: The command that caused it; empty for what the market caused (a
            resting order's fill, funding, a liquidation).
    """

    account_id: str
    seq: int
    time_us: int
    command_id: str = ""


class AccountOpened(_Event, frozen=True, omit_defaults=True, tag="opened"):
    """An account was opened; `entries` are its starting deposits."""

    owner: str
    name: str
    market: Market
    exchange: str
    venue: Venue
    entries: list[LedgerEntry]


class AccountReset(_Event, frozen=True, omit_defaults=True, tag="reset"):
    """Every order canceled and position dropped; `entries` set the new balances."""

    entries: list[LedgerEntry]


class OrderAccepted(_Event, frozen=True, omit_defaults=True, tag="accepted"):
    """An order passed the venue's checks and is working (or about to fill)."""

    order: Order


class OrderRejected(_Event, frozen=True, omit_defaults=True, tag="rejected"):
    """An order was refused; `order.reason` and `order.code` say why, in Binance's words."""

    order: Order


class OrderRepeated(_Event, frozen=True, omit_defaults=True, tag="repeated"):
    """A place command repeated a client order id: `order` is that order as it stands,
    and nothing else happened (the fold changes nothing but `seq`)."""

    order: Order


class OrderUpdated(_Event, frozen=True, omit_defaults=True, tag="updated"):
    """An order changed without a fill: canceled, expired, amended or triggered."""

    order: Order


class OrderFilled(_Event, frozen=True, omit_defaults=True, tag="fill"):
    """A fill, the order after it, and the wallet movements it caused (trade amounts,
    fee, realised P&L), in the order they apply."""

    fill: Fill
    order: Order
    entries: list[LedgerEntry]


class LeverageChanged(_Event, frozen=True, omit_defaults=True, tag="leverage"):
    """A USDⓈ-M symbol's leverage or margin mode changed."""

    symbol: str
    leverage: int
    margin_mode: MarginMode


class FundingPaid(_Event, frozen=True, omit_defaults=True, tag="funding"):
    """Funding settled on a position at a funding time: amount = −qty × mark × rate
    (a long pays a positive rate)."""

    symbol: str
    funding_time_us: int
    rate: Decimal
    mark_price: Decimal
    position_qty: Decimal
    entry: LedgerEntry


class Liquidated(_Event, frozen=True, omit_defaults=True, tag="liquidation"):
    """The venue took over a position whose margin fell below maintenance; its closing
    fill follows as an `OrderFilled` with ``fill.liquidation``."""

    symbol: str
    position_qty: Decimal
    mark_price: Decimal
    margin_balance: Decimal
    maintenance_margin: Decimal


class CommandRefused(_Event, frozen=True, omit_defaults=True, tag="refused"):
    """A command that was not an order was refused (unknown order, bad leverage, …)."""

    command: str
    reason: str
    code: int | None = None


AccountEvent = (
    AccountOpened | AccountReset | OrderAccepted | OrderRejected | OrderRepeated
    | OrderUpdated | OrderFilled | LeverageChanged | FundingPaid | Liquidated | CommandRefused
)  # fmt: skip


# ---- views: tr.accounts.v1 (not part of the fold) ----------------------------------


class AccountView(msgspec.Struct, frozen=True, omit_defaults=True):
    """An account's state after its event `seq`, valued at the market at `time_us`.

    Published after every event and at least once a second while a price that values
    it moves. Equity is the wallet balance of the margin asset plus unrealised P&L
    (USDⓈ-M), or every asset valued at its last price in the quote asset (spot).
    """

    account_id: str
    owner: str
    name: str
    market: Market
    exchange: str
    venue: Venue
    seq: int
    time_us: int
    balances: list[Balance]
    positions: list[Position]
    open_orders: list[Order]
    equity: Decimal
    unrealized_pnl: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)
    margin_balance: Decimal = Decimal(0)
    maintenance_margin: Decimal = Decimal(0)
    available: Decimal = Decimal(0)


class InvalidTradingMessage(SchemaError):
    """A command or event that decoded but breaks a rule of its shape."""


def check_request(request: OrderRequest) -> OrderRequest:
    """Reject a request whose fields contradict each other (before any venue sees it).

    Raises:
        InvalidTradingMessage: With the field at fault, e.g. a limit order without a
            price or both `quantity` and `quote_quantity` set.
    """
    if not request.client_order_id or len(request.client_order_id) > 36:
        raise InvalidTradingMessage("client_order_id must be 1 to 36 characters")
    if (request.quantity is None) == (request.quote_quantity is None):
        raise InvalidTradingMessage("give exactly one of quantity and quote_quantity")
    if request.quote_quantity is not None and request.type != "market":
        raise InvalidTradingMessage("quote_quantity is only for market orders")
    for name in ("quantity", "quote_quantity", "price", "stop_price"):
        value = getattr(request, name)
        if value is not None and (not value.is_finite() or value <= 0):
            raise InvalidTradingMessage(f"{name} must be a positive decimal, got {value}")
    needs_price = request.type in ("limit", "stop_limit")
    if needs_price and request.price is None:
        raise InvalidTradingMessage(f"a {request.type} order needs a price")
    if not needs_price and request.price is not None:
        raise InvalidTradingMessage(f"a {request.type} order takes no price")
    needs_stop = request.type in ("stop_market", "stop_limit", "take_profit_market")
    if needs_stop and request.stop_price is None:
        raise InvalidTradingMessage(f"a {request.type} order needs a stop_price")
    if not needs_stop and request.stop_price is not None:
        raise InvalidTradingMessage(f"a {request.type} order takes no stop_price")
    if request.trigger == "mark" and request.market != "usdm":
        raise InvalidTradingMessage("only USDⓈ-M orders can trigger on the mark price")
    if request.reduce_only and request.market != "usdm":
        raise InvalidTradingMessage("reduce_only is only for USDⓈ-M orders")
    if request.type == "market" and request.time_in_force == "GTX":
        raise InvalidTradingMessage("a market order cannot be post-only (GTX)")
    return request


_encoder = msgspec.json.Encoder(decimal_format="string")
encode = _encoder.encode
"""Encode any message of this module to its wire form (JSON, decimals as strings)."""


def command_decoder() -> msgspec.json.Decoder[Command]:
    """A decoder of ``tr.orders.v1`` values."""
    return msgspec.json.Decoder(Command)


def event_decoder() -> msgspec.json.Decoder[AccountEvent]:
    """A decoder of ``tr.events.v1`` values."""
    return msgspec.json.Decoder(AccountEvent)


def view_decoder() -> msgspec.json.Decoder[AccountView]:
    """A decoder of ``tr.accounts.v1`` values."""
    return msgspec.json.Decoder(AccountView)

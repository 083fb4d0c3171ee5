"""USDⓈ-M margin rules against hand-worked numbers: tiers, fills, funding, liquidation.

Tiers are Binance's BTCUSDT brackets (the settings' defaults): tier 1 notional 0–50,000
at 125×, MMR 0.4 %, cum 0; tier 2 50,000–600,000 at 100×, MMR 0.5 %, cum 50; tier 3
600,000–3,000,000 at 75×, MMR 0.65 %, cum 950.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Context, localcontext
from decimal import Decimal as D

import pytest

from flows.trading import futures
from flows.trading.futures import (
    MarginStatus,
    apply_fill,
    bankruptcy_price,
    close_out_prices,
    funding_amount,
    initial_margin,
    isolated_margin_after_fill,
    leverage_error,
    liquidation_price,
    maintenance_margin,
    margin_status,
    max_leverage,
    max_notional,
    opening_qty,
    order_margin,
    position_view,
    position_views,
    reduce_only_qty,
    tier_of,
    to_liquidate,
    unrealized_pnl,
)
from flows.trading.settings import MarginTier, PaperSettings
from flows.trading.state import AccountState, PositionState
from schemas.trading import MarginMode

TIERS = PaperSettings().margin_tiers


def pos(
    qty: str,
    entry: str,
    *,
    symbol: str = "BTCUSDT",
    leverage: int = 20,
    mode: MarginMode = "cross",
    margin: str = "0",
) -> PositionState:
    return PositionState(
        "binance", symbol, leverage, mode, D(qty), D(entry), isolated_margin=D(margin)
    )


def account(wallet: str, *positions: PositionState) -> AccountState:
    return AccountState(
        "a1", "u1", "paper", "usdm", "binance", "paper",
        balances={"USDT": D(wallet)}, positions={p.symbol: p for p in positions},
    )  # fmt: skip


def mixed_account() -> AccountState:
    """Wallet 10,000: isolated BTC long 1 @ 60,000 with 3,000 (LP 57,236.18…); cross ETH
    short 10 @ 3,000 and cross SOL long 100 @ 100, both 10×, on a 7,000 cross wallet."""
    return account(
        "10000",
        pos("1", "60000", mode="isolated", margin="3000"),
        pos("-10", "3000", symbol="ETHUSDT", leverage=10),
        pos("100", "100", symbol="SOLUSDT", leverage=10),
    )


def close(p: PositionState, price: D) -> D:
    """Close the whole position at `price`; its realised P&L."""
    return apply_fill(p, "SELL" if p.qty > 0 else "BUY", abs(p.qty), price)[0]


# ---- tiers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notional", "floor", "mm"),
    [
        ("0", "0", "0"),
        ("49999.99", "0", "199.99996"),  # 49,999.99 × 0.004
        ("50000", "50000", "200.000"),  # 50,000 × 0.005 − 50: the same 200 as tier 1's edge
        ("60000", "50000", "250.000"),  # 60,000 × 0.005 − 50
        ("599999", "50000", "2949.995"),  # 599,999 × 0.005 − 50 = 2,999.995 − 50
        ("600000", "600000", "2950.0000"),  # 600,000 × 0.0065 − 950 = 2,950 (continuous)
        ("2000000000", "1200000000", "578518550.0"),  # 2e9 × 0.5 − 421,481,450
    ],
)
def test_maintenance_margin_takes_the_notionals_tier_and_is_continuous(
    notional: str, floor: str, mm: str
) -> None:
    assert tier_of(D(notional), TIERS).floor == D(floor)
    assert maintenance_margin(D(notional), TIERS) == D(mm)


def test_maintenance_margin_has_no_jump_at_any_default_tier_edge() -> None:
    step = D("0.00000001")
    for tier in TIERS[1:]:
        below = maintenance_margin(tier.floor - step, TIERS)
        at = maintenance_margin(tier.floor, TIERS)
        assert D(0) < at - below < step  # only the rate × 1e-8 of the step itself


def test_a_negative_notional_has_no_tier() -> None:
    with pytest.raises(ValueError, match="negative"):
        tier_of(D("-1"), TIERS)


@pytest.mark.parametrize(
    ("notional", "leverage", "margin"),
    [
        ("60000", 20, "3000"),
        ("1000", 3, "333.33333334"),  # 333.333… rounded up: a reservation is never short
        ("0.0001", 3, "0.00003334"),  # 0.0000333… rounded up
        ("0.0003", 125, "0.0000024"),  # already 8 decimals or fewer: as it is
    ],
)
def test_initial_margin_is_notional_over_leverage_rounded_up(
    notional: str, leverage: int, margin: str
) -> None:
    assert initial_margin(D(notional), leverage) == D(margin)
    assert order_margin(D(1), D(notional), leverage) == D(margin)


def test_order_margin_is_quantity_times_price_over_leverage() -> None:
    assert order_margin(D("0.5"), D("60000"), 10) == D(3000)  # 0.5 × 60,000 / 10


@pytest.mark.parametrize(
    ("notional", "cap", "expected"),
    [("49999", 125, 125), ("50000", 125, 100), ("60000", 20, 20), ("700000", 125, 75)],
)
def test_max_leverage_is_the_tiers_capped_by_settings(
    notional: str, cap: int, expected: int
) -> None:
    assert max_leverage(D(notional), TIERS, cap) == expected


@pytest.mark.parametrize(
    ("leverage", "notional", "cap", "code", "reason"),
    [
        (20, "60000", 125, None, None),
        (125, "49999", 125, None, None),
        (126, "0", 125, -4028, "Leverage 126 is not valid"),
        (0, "0", 125, -4028, "Leverage 0 is not valid"),
        (50, "1000", 20, -4028, "Leverage 50 is not valid"),  # above the settings' cap
        (125, "50000", 125, -2027, "Exceeded the maximum allowable position at current leverage."),
        (100, "599999", 125, None, None),
        (100, "600000", 125, -2027, "Exceeded the maximum allowable position at current leverage."),
        (1, "5000000000", 125, None, None),  # 1× is allowed at every notional
    ],
)
def test_leverage_error_speaks_binances_words(
    leverage: int, notional: str, cap: int, code: int | None, reason: str | None
) -> None:
    refusal = leverage_error(leverage, D(notional), TIERS, cap)
    assert (refusal and refusal.code, refusal and refusal.reason) == (code, reason)


def test_max_notional_is_the_first_floor_that_forbids_the_leverage() -> None:
    assert max_notional(125, TIERS) == D(50000)
    assert max_notional(20, TIERS) == D(100_000_000)  # the 10× tier is the first below 20
    assert max_notional(1, TIERS) is None


# ---- one position --------------------------------------------------------------------


def fill(held: str, entry: str, side: str, qty: str, price: str) -> tuple[tuple, tuple]:
    """Apply one fill to a cross position: ((realised, closed), (qty, entry) after)."""
    p = pos(held, entry)
    result = apply_fill(p, side, D(qty), D(price))  # type: ignore[arg-type]
    return result, (p.qty, p.entry_price)


def test_apply_fill_opens_and_adds_at_the_weighted_entry() -> None:
    nothing = (D(0), D(0))
    # a flat position takes the fill as it is
    assert fill("0", "0", "BUY", "1", "100") == (nothing, (D(1), D(100)))
    assert fill("0", "0", "SELL", "2", "100") == (nothing, (D(-2), D(100)))
    # (1 × 100 + 3 × 120) / 4 = 115, either way round
    assert fill("1", "100", "BUY", "3", "120") == (nothing, (D(4), D(115)))
    assert fill("-1", "100", "SELL", "3", "120") == (nothing, (D(-4), D(115)))
    # 302 / 3 = 100.666…, kept to 18 decimals
    assert fill("1", "100", "BUY", "2", "101") == (nothing, (D(3), D("100.666666666666666667")))


def test_apply_fill_reduces_and_closes_realising_pnl() -> None:
    # a long sold: 1 × (130 − 115) = 15 realised, the entry stays
    assert fill("4", "115", "SELL", "1", "130") == ((D(15), D(1)), (D(3), D(115)))
    # a short bought back: 1 × (100 − 90) = 10
    assert fill("-2", "100", "BUY", "1", "90") == ((D(10), D(1)), (D(-1), D(100)))
    # closed: 3 × (110 − 115) = −15, flat with entry 0
    assert fill("3", "115", "SELL", "3", "110") == ((D(-15), D(3)), (D(0), D(0)))


def test_apply_fill_flips_and_opens_the_remainder_at_the_fill_price() -> None:
    # 2 × (90 − 100) = −20 on the long, the other 3 open short at 90
    assert fill("2", "100", "SELL", "5", "90") == ((D(-20), D(2)), (D(-3), D(90)))
    assert fill("-2", "100", "BUY", "5", "90") == ((D(20), D(2)), (D(3), D(90)))


def test_apply_fill_rounds_realised_pnl_to_8_decimals() -> None:
    entry = "100.666666666666666667"
    # 3 × 0.666666666666666667 = 2.000000000000000001 → 2
    assert fill("-3", entry, "BUY", "3", "100") == ((D(2), D(3)), (D(0), D(0)))
    # −0.666666666666666667 → −0.66666667
    assert fill("1", entry, "SELL", "1", "100") == ((D("-0.66666667"), D(1)), (D(0), D(0)))


def test_results_do_not_depend_on_the_callers_decimal_context() -> None:
    with localcontext(Context(prec=5, rounding=ROUND_DOWN)):
        assert fill("1", "100", "BUY", "2", "101")[1] == (D(3), D("100.666666666666666667"))
        assert funding_amount(D("0.003"), D("60000.12"), D("0.00012345")) == D("-0.02222104")
        p = pos("1", "60000", mode="isolated", margin="3000")
        assert liquidation_price(p, wallet_balance=D(3000), tiers=TIERS) == D("57236.18090452")


def test_apply_fill_refuses_a_fill_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        apply_fill(pos("1", "100"), "SELL", D(0), D(100))


def test_realised_pnl_of_fills_equals_the_unrealised_pnl_they_close() -> None:
    p = pos("0", "0")
    apply_fill(p, "BUY", D("0.3"), D("60000.1"))
    apply_fill(p, "BUY", D("0.7"), D("60123.7"))
    open_pnl = unrealized_pnl(p, D("61000.05"))
    realized, _ = apply_fill(p, "SELL", D(1), D("61000.05"))
    # entry (0.3 × 60000.1 + 0.7 × 60123.7) / 1 = 60086.62; 1 × (61000.05 − 60086.62)
    assert realized == open_pnl == D("913.43")


@pytest.mark.parametrize(
    ("held", "side", "qty", "allowed"),
    [
        (None, "SELL", "1", "0"),  # nothing to reduce
        ("0", "BUY", "1", "0"),
        ("2", "SELL", "1", "1"),
        ("2", "SELL", "5", "2"),  # clipped: it would flip the long
        ("2", "BUY", "1", "0"),  # a buy increases a long: Binance rejects (-2022)
        ("-2", "BUY", "3", "2"),
        ("-2", "SELL", "1", "0"),
    ],
)
def test_reduce_only_clips_and_never_flips_or_increases(
    held: str | None, side: str, qty: str, allowed: str
) -> None:
    p = None if held is None else pos(held, "100")
    assert reduce_only_qty(p, side, D(qty)) == D(allowed)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("held", "side", "qty", "opening"),
    [
        (None, "BUY", "1", "1"),
        ("2", "BUY", "1", "1"),  # adds to the long
        ("2", "SELL", "1", "0"),  # only reduces
        ("2", "SELL", "5", "3"),  # reduces 2, opens a 3 short
    ],
)
def test_opening_qty_is_what_an_order_adds_beyond_reducing(
    held: str | None, side: str, qty: str, opening: str
) -> None:
    p = None if held is None else pos(held, "100")
    assert opening_qty(p, side, D(qty)) == D(opening)  # type: ignore[arg-type]


def test_reduce_only_rejection_is_binances() -> None:
    assert (futures.REDUCE_ONLY_REJECTED.code, futures.REDUCE_ONLY_REJECTED.reason) == (
        -2022,
        "ReduceOnly Order is rejected.",
    )


@pytest.mark.parametrize(
    ("qty", "mark", "rate", "amount"),
    [
        ("2", "50000", "0.0001", "-10"),  # a long pays a positive rate: −2 × 50,000 × 0.0001
        ("-2", "50000", "0.0001", "10"),  # a short receives it
        ("2", "50000", "-0.0001", "10"),  # a negative rate pays the long
        ("-0.003", "60000.12", "0.00012345", "0.02222104"),  # 0.022221044442 to 8 decimals
        ("0.003", "60000.12", "0.00012345", "-0.02222104"),
    ],
)
def test_funding_amount_sign_and_rounding(qty: str, mark: str, rate: str, amount: str) -> None:
    assert funding_amount(D(qty), D(mark), D(rate)) == D(amount)


def test_unrealized_pnl_is_qty_times_mark_minus_entry() -> None:
    assert unrealized_pnl(pos("1", "60000"), D("61000")) == D(1000)
    assert unrealized_pnl(pos("-2", "60000"), D("61000")) == D(-2000)
    assert unrealized_pnl(pos("0", "0"), D("61000")) == D(0)


@pytest.mark.parametrize(
    ("margin", "held", "closed", "opened", "price", "realized", "fee", "after"),
    [
        # open 1 @ 60,000 at 20×: 3,000 initial margin, the 30 fee booked against it
        ("0", "0", "0", "1", "60000", "0", "30", "2970"),
        # close half: (2,970 + 1,000 − 15.5) = 3,954.5, half of it released
        ("2970", "1", "0.5", "0", "62000", "1000", "15.5", "1977.25"),
        # close all: everything released
        ("2970", "1", "1", "0", "62000", "2000", "31", "0"),
        # flip 1 long into 1 short at 59,000: the old margin goes, 59,000 / 20 comes
        ("3000", "1", "1", "1", "59000", "-1000", "0", "2950"),
    ],
)
def test_isolated_margin_after_fill(
    margin: str, held: str, closed: str, opened: str, price: str,
    realized: str, fee: str, after: str,
) -> None:  # fmt: skip
    assert isolated_margin_after_fill(
        D(margin), held=D(held), closed=D(closed), opened=D(opened), price=D(price),
        leverage=20, realized=D(realized), fee=D(fee),
    ) == D(after)  # fmt: skip


# ---- liquidation price ---------------------------------------------------------------


def test_isolated_long_at_20x_liquidates_where_binances_formula_says() -> None:
    # 1 BTC long at 60,000 with 3,000 USDT isolated margin (20×). Tier 2 (the notional
    # at the liquidation price is ≥ 50,000): MMR 0.5 %, cum 50, WB 3,000, TMM1 = UPNL1 = 0:
    #   LP = (3000 − 0 + 0 + 50 − 1 × 1 × 60000) / (1 × 0.005 − 1 × 1)
    #      = −56950 / −0.995 = 57236.180904522613…  → 57236.18090452
    # Check: margin balance 3000 + (57236.1809… − 60000) = 236.1809…
    #        maintenance 57236.1809… × 0.005 − 50 = 236.1809…
    # (Tier 1's rate would give (3000 − 60000) / −0.996 = 57228.92, whose notional is not
    # in tier 1: the formula must take the tier at the liquidation price.)
    p = pos("1", "60000", mode="isolated", margin="3000")
    lp = liquidation_price(p, wallet_balance=D(3000), tiers=TIERS)
    assert lp == D("57236.18090452")
    assert position_view(p, D("60000"), tiers=TIERS).liquidation_price == lp


def test_isolated_short_liquidation_price() -> None:
    # 1 BTC short at 60,000, 3,000 isolated: Side −1, tier 2:
    #   LP = (3000 + 50 + 1 × 60000) / (0.005 + 1) = 63050 / 1.005 = 62736.318407960199…
    p = pos("-1", "60000", mode="isolated", margin="3000")
    assert liquidation_price(p, wallet_balance=D(3000), tiers=TIERS) == D("62736.31840796")


def test_liquidation_price_takes_the_lower_tier_when_the_price_falls_into_it() -> None:
    # 1 BTC long at 52,000 (tier 2 now) with 2,600 isolated. Tier 2's solution
    # (2600 + 50 − 52000) / −0.995 = 49597.99 has a notional below 50,000, so tier 1 applies:
    #   LP = (2600 + 0 − 52000) / (0.004 − 1) = 49598.393574297188…
    p = pos("1", "52000", mode="isolated", margin="2600")
    assert liquidation_price(p, wallet_balance=D(2600), tiers=TIERS) == D("49598.39357430")


def test_cross_long_liquidation_price_counts_the_other_positions() -> None:
    # Wallet 10,000; cross BTC long 1 @ 60,000; cross ETH short 10 @ 3,000 marked at 3,100:
    # ETH unrealised −1,000, maintenance 31,000 × 0.004 = 124. For BTC (tier 2):
    #   LP = (10000 − 124 + (−1000) + 50 − 60000) / (0.005 − 1) = −51074 / −0.995
    #      = 51330.653266331658…
    btc = pos("1", "60000")
    eth = pos("-10", "3000", symbol="ETHUSDT", leverage=10)
    acc = account("10000", btc, eth)
    marks = {"BTCUSDT": D("60000"), "ETHUSDT": D("3100")}
    lp = liquidation_price(
        btc, wallet_balance=D(10000), others_unrealized=D(-1000), others_maintenance=D(124),
        tiers=TIERS,
    )  # fmt: skip
    assert lp == D("51330.65326633")
    views = {v.symbol: v for v in position_views(acc, marks, TIERS)}
    assert views["BTCUSDT"].liquidation_price == lp
    # and it is the mark at which the engine starts liquidating: not at 51,330.66, at 51,330.65
    assert to_liquidate(acc, {**marks, "BTCUSDT": D("51330.66")}, TIERS) == []
    assert to_liquidate(acc, {**marks, "BTCUSDT": D("51330.65")}, TIERS) == [
        "BTCUSDT",
        "ETHUSDT",
    ]


@pytest.mark.parametrize("side", [1, -1])
@pytest.mark.parametrize(
    ("size", "leverage"),
    [("0.5", 125), ("1", 20), ("20", 50), ("100", 25), ("2000", 5), ("2000", 1)],
)
def test_the_liquidation_price_is_where_the_engine_starts_liquidating(
    size: str, leverage: int, side: int
) -> None:
    # In every tier from the first (30,000 notional) to the seventh (120 M), long and
    # short: just on the safe side of the price nothing happens, just past it the
    # position is liquidated, and at it margin balance equals maintenance margin.
    qty = D(size) * side
    margin = initial_margin(abs(qty) * 60000, leverage)
    p = pos(str(qty), "60000", mode="isolated", margin=str(margin), leverage=leverage)
    lp = liquidation_price(p, wallet_balance=margin, tiers=TIERS)
    if lp is None:  # 1× long: never liquidated
        assert (side, leverage) == (1, 1)
        return
    acc = account("1000000000", p)
    step = D("0.01") * side
    assert to_liquidate(acc, {"BTCUSDT": lp + step}, TIERS) == []
    assert to_liquidate(acc, {"BTCUSDT": lp - step}, TIERS) == ["BTCUSDT"]
    at = margin_status(acc, {"BTCUSDT": lp}, TIERS).isolated["BTCUSDT"]
    # (the price and the P&L are each rounded to 8 decimals)
    assert abs(at.margin_balance - at.maintenance_margin) <= (abs(qty) + 1) * D("0.00000001")


@pytest.mark.parametrize(
    ("qty", "wallet"),
    [
        ("1", "60000"),  # a 1× long: its margin covers the whole notional, never liquidated
        ("-1", "-70000"),  # a short whose cross wallet is gone at any price
        ("0", "3000"),  # flat
    ],
)
def test_no_liquidation_price(qty: str, wallet: str) -> None:
    p = pos(qty, "60000" if qty != "0" else "0")
    assert liquidation_price(p, wallet_balance=D(wallet), tiers=TIERS) is None


def test_liquidation_price_of_a_discontinuous_table_is_where_margin_first_falls_short() -> None:
    # A table whose tier 2 has no maintenance amount jumps at 1,000 (4 → 10):
    # a 1-unit long at 1,100 with 105 margin: tier 2's solution (105 − 1100) / −0.99 =
    # 1005.05 lies in tier 2; tier 1's (105 − 1100) / −0.996 = 998.99 in tier 1. As the
    # price falls the tier-2 one comes first.
    tiers = [
        MarginTier(floor=D(0), max_leverage=125, rate=D("0.004"), amount=D(0)),
        MarginTier(floor=D(1000), max_leverage=50, rate=D("0.01"), amount=D(0)),
    ]
    p = pos("1", "1100", mode="isolated", margin="105")
    assert liquidation_price(p, wallet_balance=D(105), tiers=tiers) == D("1005.05050505")


# ---- bankruptcy and close-out --------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "entry", "margin", "price"),
    [
        ("1", "60000", "3000", "57000"),  # 60,000 − 3,000 / 1
        ("-1", "60000", "3000", "63000"),
        ("-3", "100", "10", "103.33333333"),  # 103.333… rounded down for a short
        ("3", "100", "10", "96.66666667"),  # 96.666… rounded up for a long
        ("1", "60000", "60000", None),  # 1×: never bankrupt
    ],
)
def test_bankruptcy_price_loses_exactly_the_margin_and_never_more(
    qty: str, entry: str, margin: str, price: str | None
) -> None:
    p = pos(qty, entry, mode="isolated", margin=margin)
    bankrupt = bankruptcy_price(p, wallet_balance=D(margin))
    assert bankrupt == (None if price is None else D(price))
    if bankrupt is not None:
        assert D(0) <= D(margin) + close(p, bankrupt) < abs(D(qty)) * D("0.00000001")


def test_to_liquidate_isolated_alone_and_cross_together() -> None:
    acc = mixed_account()
    calm = {"BTCUSDT": D("60000"), "ETHUSDT": D("3000"), "SOLUSDT": D("100")}
    assert to_liquidate(acc, calm, TIERS) == []
    # BTC below its liquidation price: only the isolated BTC goes; cross is untouched
    # (margin 3000 − 2800 = 200 < maintenance 57,200 × 0.005 − 50 = 236)
    assert to_liquidate(acc, {**calm, "BTCUSDT": D("57200")}, TIERS) == ["BTCUSDT"]
    # ETH up to 3,690: cross margin balance 7,000 − 6,900 = 100 < maintenance
    # 36,900 × 0.004 + 10,000 × 0.004 = 187.6: both cross positions go, BTC stays
    hot = {**calm, "ETHUSDT": D("3690")}
    assert to_liquidate(acc, hot, TIERS) == ["ETHUSDT", "SOLUSDT"]
    # A huge gain on the isolated BTC does not rescue the cross positions
    assert to_liquidate(acc, {**hot, "BTCUSDT": D("90000")}, TIERS) == ["ETHUSDT", "SOLUSDT"]


def test_close_out_prices_take_exactly_the_margin() -> None:
    acc = mixed_account()
    marks = {"BTCUSDT": D("57200"), "ETHUSDT": D("3690"), "SOLUSDT": D("99")}
    prices = close_out_prices(acc, marks, TIERS)
    # BTC at its bankruptcy price 57,000; SOL (the smaller cross notional, 9,900) at its
    # mark; ETH (36,900) where the cross wallet 7,000 − 100 (SOL) is gone:
    # 3,000 + 6,900 / 10 = 3,690
    assert prices == {"BTCUSDT": D(57000), "ETHUSDT": D(3690), "SOLUSDT": D(99)}
    # the cross wallet ends at exactly 0, the isolated margin is exactly lost
    assert D(7000) + sum(close(acc.positions[s], prices[s]) for s in ("ETHUSDT", "SOLUSDT")) == 0
    assert close(acc.positions["BTCUSDT"], prices["BTCUSDT"]) == D(-3000)


def test_close_out_prices_are_empty_when_nothing_is_due() -> None:
    acc = account("10000", pos("1", "60000"))
    assert close_out_prices(acc, {"BTCUSDT": D("60000")}, TIERS) == {}


# ---- the account ---------------------------------------------------------------------


def test_margin_status_and_available_balance_with_open_orders() -> None:
    # Wallet 10,000: isolated BTC long 1 @ 60,000 with 3,000, marked 61,000 (+1,000);
    # cross ETH short 10 @ 3,000 at 10×, marked 3,100 (−1,000; initial margin 3,100);
    # open orders reserve 500.
    btc = pos("1", "60000", mode="isolated", margin="3000")
    eth = pos("-10", "3000", symbol="ETHUSDT", leverage=10)
    status = margin_status(
        account("10000", btc, eth), {"BTCUSDT": D("61000"), "ETHUSDT": D("3100")}, TIERS,
        order_margin=D(500),
    )  # fmt: skip
    assert isinstance(status, MarginStatus)
    assert status.wallet_balance == D(10000)
    assert status.unrealized_pnl == D(0)  # +1,000 − 1,000
    assert status.margin_balance == D(10000)
    # 61,000 × 0.005 − 50 = 255 plus 31,000 × 0.004 = 124
    assert status.maintenance_margin == D(379)
    assert status.position_margin == D(6100)  # 3,000 isolated + 3,100 cross
    assert status.cross_wallet_balance == D(7000)
    assert status.cross_margin_balance == D(6000)
    # available: 7,000 cross wallet − 1,000 cross loss − 3,100 − 500 (the isolated gain
    # is not available to the cross side)
    assert status.available == D(2400)
    assert set(status.isolated) == {"BTCUSDT"}
    assert status.isolated["BTCUSDT"].margin_balance == D(4000)
    # orders beyond what is left make available 0, never negative
    over = margin_status(
        account("10000", btc, eth), {"BTCUSDT": D("61000"), "ETHUSDT": D("3100")}, TIERS,
        order_margin=D(5000),
    )  # fmt: skip
    assert over.available == D(0)


def test_a_position_without_a_mark_is_valued_at_its_entry() -> None:
    acc = account("1000", pos("1", "60000"))
    status = margin_status(acc, {}, TIERS)
    assert status.unrealized_pnl == D(0)
    assert status.maintenance_margin == D(250)  # 60,000 × 0.005 − 50
    [view] = position_views(acc, {}, TIERS)
    assert (view.mark_price, view.unrealized_pnl, view.maintenance_margin) == (None, D(0), D(250))


def test_position_view_carries_the_positions_figures() -> None:
    p = pos("-2", "3000", symbol="ETHUSDT", mode="isolated", margin="600", leverage=10)
    p.realized_pnl, p.fees, p.funding = D("12.5"), D("3.1"), D("-0.4")
    view = position_view(p, D("3050"), tiers=TIERS)
    assert (view.qty, view.entry_price, view.leverage, view.margin_mode) == (
        D(-2), D(3000), 10, "isolated",
    )  # fmt: skip
    assert (view.unrealized_pnl, view.maintenance_margin) == (D(-100), D("24.400"))
    assert (view.realized_pnl, view.fees, view.funding) == (D("12.5"), D("3.1"), D("-0.4"))
    # (600 + 0 + 6000) / (2 × 0.004 + 2) = 3286.85…
    assert view.liquidation_price == D("3286.85258964")
    # a cross position needs the cross wallet to have a liquidation price
    assert position_view(pos("1", "60000"), D("60000"), tiers=TIERS).liquidation_price is None


def test_position_views_list_flat_symbols_only_when_asked() -> None:
    flat = pos("0", "0", symbol="ETHUSDT")
    flat.realized_pnl = D(40)
    acc = account("1000", pos("0.01", "60000"), flat)
    assert [v.symbol for v in position_views(acc, {}, TIERS)] == ["BTCUSDT"]
    assert [v.symbol for v in position_views(acc, {}, TIERS, include_flat=True)] == [
        "BTCUSDT",
        "ETHUSDT",
    ]


def test_a_view_shows_quantities_plainly_and_maintenance_margin_in_usdt_places() -> None:
    from flows.trading.position import position_view
    from flows.trading.settings import PaperSettings
    from flows.trading.state import PositionState

    pos = PositionState("sim", "SYMUSDT", 20, qty=D("120637.000000000000000000"),
                        entry_price=D("0.00165786"))  # fmt: skip
    view = position_view(pos, D("0.00165795"), tiers=PaperSettings().margin_tiers)
    # 120637 x 0.00165795 = 200.0101... notional; tier 1: x 0.4 % = 0.80004045660
    assert str(view.qty) == "120637"
    assert str(view.maintenance_margin) == "0.80004046"

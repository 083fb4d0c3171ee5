"""The perpetuals metrics of a row, each recomputed by hand from given marks, open
interest, liquidations and funding."""

from __future__ import annotations

import pytest

from flows.signals.perps import HOUR_MS, PerpState, funding_interval_ms
from schemas.ranks import PERP_METRICS
from tests.perps_records import funding, liquidation, mark, open_interest
from tests.unit.flows.signals.test_rules import T0, M

S = 1_000
H = HOUR_MS


def values(state: PerpState, time_ms: int) -> dict[str, float | None]:
    return dict(zip(PERP_METRICS, state.values(time_ms), strict=True))


def test_nothing_before_any_record() -> None:
    assert set(values(PerpState(), T0).values()) == {None}


def test_mark_basis_and_funding() -> None:
    state = PerpState()
    state.add_mark(mark(T0 + 10 * S, "100.5", "100", "0.0001", next_funding_ms=T0 + 8 * H))
    state.add_mark(mark(T0 + 9 * S, "90", "90", "0.0009", next_funding_ms=T0 + 8 * H))  # older
    state.add_funding(funding(T0, "0.0002"))
    state.add_funding(funding(T0 - 8 * H, "-0.0003"))  # an older settlement: not the last
    got = values(state, T0 + 11 * S)
    assert got["mark_price"] == 100.5 and got["index_price"] == 100.0
    assert got["basis_bps"] == pytest.approx((100.5 - 100) / 100 * 10_000, rel=1e-12)  # 50
    assert got["funding_rate_pct"] == pytest.approx(0.01, rel=1e-12)
    assert got["funding_last_pct"] == pytest.approx(0.02, rel=1e-12)
    # 8 h between the last settled and the next funding: 3 a day, 1095 a year
    assert got["funding_annual_pct"] == pytest.approx(0.01 * 1095, rel=1e-12)
    assert got["next_funding_s"] == 8 * 3600 - 11
    # no open interest yet; liquidation sums are 0 once any record arrived
    assert got["open_interest"] is None and got["oi_change_pct_5m"] is None
    assert got["liq_long_5m"] == 0.0 and got["liq_short_24h"] == 0.0


def test_a_shorter_funding_interval_annualises_by_its_own_count() -> None:
    state = PerpState()
    state.add_funding(funding(T0, "0.0001"))
    state.add_mark(mark(T0 + S, "10", "10", "-0.0005", next_funding_ms=T0 + 4 * H))
    # 4 h: 6 a day, 2190 a year
    assert values(state, T0 + S)["funding_annual_pct"] == pytest.approx(-0.05 * 2190, rel=1e-12)


def test_funding_interval() -> None:
    assert funding_interval_ms(T0 + 8 * H, None) == 8 * H  # nothing settled yet: standard
    assert funding_interval_ms(T0 + H, T0) == H
    assert funding_interval_ms(T0 + 16 * H, T0) == 8 * H  # a missed funding between
    assert funding_interval_ms(T0 + 90 * M, T0) == 8 * H  # not a whole number of hours
    assert funding_interval_ms(T0, T0) == 8 * H


def test_a_delivery_like_mark_without_rate_or_next_funding() -> None:
    state = PerpState()
    state.add_mark(mark(T0, "10", "10", None, next_funding_ms=0))
    got = values(state, T0 + S)
    assert got["funding_rate_pct"] is None and got["funding_annual_pct"] is None
    assert got["next_funding_s"] is None and got["mark_price"] == 10.0


def test_open_interest_value_and_changes() -> None:
    state = PerpState()
    for t, contracts in (
        (T0 + 10 * S - 24 * H, "1000"),
        (T0 - 4 * H, "1200"),
        (T0 - H, "1500"),
        (T0 - 5 * M, "1600"),
        (T0 + 10 * S, "2000"),
    ):
        state.add_open_interest(open_interest(t, contracts))
    state.add_open_interest(open_interest(T0 - H, "1500"))  # a repeat changes nothing
    state.add_mark(mark(T0 + 10 * S, "100.5", "100"))
    got = values(state, T0 + 11 * S)
    assert got["open_interest"] == 2000.0
    assert got["open_interest_value"] == pytest.approx(2000 * 100.5, rel=1e-12)
    # each against the newest sample at or before the newest's time minus the window
    assert got["oi_change_pct_5m"] == pytest.approx((2000 / 1600 - 1) * 100, rel=1e-12)
    assert got["oi_change_pct_1h"] == pytest.approx((2000 / 1500 - 1) * 100, rel=1e-12)
    assert got["oi_change_pct_4h"] == pytest.approx((2000 / 1200 - 1) * 100, rel=1e-12)
    assert got["oi_change_pct_24h"] == pytest.approx((2000 / 1000 - 1) * 100, rel=1e-12)


def test_an_open_interest_reference_across_a_gap_is_none() -> None:
    state = PerpState()
    state.add_open_interest(open_interest(T0 - 20 * M, "100"))
    state.add_open_interest(open_interest(T0, "110"))
    got = values(state, T0 + S)
    # 5m: the newest sample before T0 - 5m is 15 min older than that (slack 5 min)
    assert got["oi_change_pct_5m"] is None and got["oi_change_pct_1h"] is None
    assert got["open_interest_value"] is None  # no mark to value it at
    # a late sample filling the gap, out of order, gives the 5m change
    state.add_open_interest(open_interest(T0 - 6 * M, "88"))
    assert values(state, T0 + S)["oi_change_pct_5m"] == pytest.approx(25.0, rel=1e-12)


def test_liquidations_by_side_and_window() -> None:
    state = PerpState()
    state.add_liquidation(liquidation(T0 - 25 * H, "BUY", "4", "50"))  # beyond the day
    state.add_liquidation(liquidation(T0 - 2 * H, "BUY", "3", "110"))  # a short: 330
    state.add_liquidation(liquidation(T0 - 10 * M, "SELL", "1", "90"))  # a long: 90
    state.add_liquidation(liquidation(T0 + 5 * S, "SELL", "2", "100"))  # a long: 200
    state.add_liquidation(liquidation(T0 + 5 * S, "SELL", "2", "100"))  # the same, again
    got = values(state, T0 + 11 * S)
    assert (got["liq_long_5m"], got["liq_long_1h"], got["liq_long_24h"]) == (200.0, 290.0, 290.0)
    assert (got["liq_short_5m"], got["liq_short_1h"], got["liq_short_24h"]) == (0.0, 0.0, 330.0)
    # windows end at the row's time: 5 min later the newest long has left the 5m window
    later = values(state, T0 + 5 * S + 5 * M + 1)
    assert later["liq_long_5m"] == 0.0 and later["liq_long_1h"] == 290.0
    # a record newer than the row moves the windows' end to it
    state.add_liquidation(liquidation(T0 + 20 * S, "BUY", "1", "7"))
    assert values(state, T0 + 11 * S)["liq_short_5m"] == 7.0


def test_out_of_order_liquidations_sum_alike() -> None:
    ordered, shuffled = PerpState(), PerpState()
    records = [liquidation(T0 + s * S, "SELL", "1", str(10 + s)) for s in range(5)]
    for record in records:
        ordered.add_liquidation(record)
    for record in (records[3], records[0], records[4], records[1], records[2]):
        shuffled.add_liquidation(record)
    assert values(ordered, T0 + 10 * S) == values(shuffled, T0 + 10 * S)
    assert values(ordered, T0 + 10 * S)["liq_long_5m"] == 10 + 11 + 12 + 13 + 14

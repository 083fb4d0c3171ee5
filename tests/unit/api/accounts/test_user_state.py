"""A user's board state: watchlists, ignore-list, presets, preferences, and their versions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import user_state as us
from api.accounts.db import AccountsDb
from api.accounts.models import User, UserState
from api.accounts.user_state_models import (
    IgnoreList,
    Preferences,
    PresetIn,
    WatchlistIn,
    parse,
)
from api.errors import ApiError, Conflict, InvalidRequest, NotFound
from api.services.filters import ScanFilter
from tests.unit.api.sessions import run


def fails(db: AccountsDb, step: Callable[[AsyncSession], Awaitable[Any]]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        run(db, step)
    return caught.value


@pytest.fixture
def users(accounts_db: AccountsDb) -> tuple[int, int]:
    async def add(db: AsyncSession) -> tuple[int, int]:
        ada = User(email="ada@example.com", created_at=datetime.now(UTC))
        bob = User(email="bob@example.com", created_at=datetime.now(UTC))
        db.add_all([ada, bob])
        await db.flush()
        return ada.id, bob.id

    return run(accounts_db, add)


def watchlist(name: str, *symbols: str) -> WatchlistIn:
    return WatchlistIn(name=name, symbols=list(symbols))


def test_a_watchlist_keeps_the_users_order_normalised_without_repeats(
    accounts_db: AccountsDb, users: tuple[int, int]
) -> None:
    ada, _ = users
    change = run(
        accounts_db,
        lambda db: us.create_watchlist(
            db, ada, watchlist(" majors ", "ethusdt", "binance:perpetual:btcusdt", "ETHUSDT")
        ),
    )
    assert change.value.name == "majors"
    assert change.value.symbols == ["ETHUSDT", "binance:usdm:BTCUSDT"]
    assert run(accounts_db, lambda db: us.get_watchlist(db, ada, change.value.id)) == change.value
    assert change.body() == {"kind": "watchlist", "watchlist": change.value.model_dump(mode="json")}


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x", "symbols": ["BTC USDT"]},
        {"name": "x", "symbols": ["binance:moon:BTCUSDT"]},
        {"name": "", "symbols": []},
        {"name": "tab\there", "symbols": []},
        {"name": "x", "symbols": [], "colour": "red"},
    ],
)
def test_malformed_watchlists_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WatchlistIn.model_validate(data)
    with pytest.raises(InvalidRequest, match="invalid watchlist"):
        parse(WatchlistIn, data, "watchlist")


def test_every_change_raises_the_version_by_one(
    accounts_db: AccountsDb, users: tuple[int, int]
) -> None:
    ada, bob = users
    assert run(accounts_db, lambda db: us.state_version(db, ada)) == 0
    made = run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a", "BTCUSDT")))
    wid = made.value.id
    versions = [
        made.version,
        run(accounts_db, lambda db: us.add_symbol(db, ada, wid, "ETHUSDT")).version,
        run(accounts_db, lambda db: us.set_ignored(db, ada, IgnoreList(symbols=["X"]))).version,
        run(accounts_db, lambda db: us.set_preferences(db, ada, Preferences())).version,
        run(accounts_db, lambda db: us.delete_watchlist(db, ada, wid)).version,
    ]
    assert versions == [1, 2, 3, 4, 5]
    assert run(accounts_db, lambda db: us.state_version(db, ada)) == 5
    assert run(accounts_db, lambda db: us.state_version(db, bob)) == 0


def test_a_failed_change_leaves_the_version_alone(
    accounts_db: AccountsDb, users: tuple[int, int]
) -> None:
    ada, _ = users
    run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a")))
    fails(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a")))
    assert run(accounts_db, lambda db: us.state_version(db, ada)) == 1


def test_adding_and_removing_symbols(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, _ = users
    wid = run(
        accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a", "BTCUSDT"))
    ).value.id

    def symbols(step: Callable[[AsyncSession], Awaitable[Any]]) -> list[str]:
        return list(run(accounts_db, step).value.symbols)

    assert symbols(lambda db: us.add_symbol(db, ada, wid, "ethusdt")) == ["BTCUSDT", "ETHUSDT"]
    assert symbols(lambda db: us.add_symbol(db, ada, wid, "BTCUSDT")) == ["BTCUSDT", "ETHUSDT"]
    assert symbols(lambda db: us.remove_symbol(db, ada, wid, "btcusdt")) == ["ETHUSDT"]
    assert symbols(lambda db: us.remove_symbol(db, ada, wid, "SOLUSDT")) == ["ETHUSDT"]
    bad = fails(accounts_db, lambda db: us.add_symbol(db, ada, wid, "not a symbol"))
    assert isinstance(bad, InvalidRequest) and "not a symbol" in bad.message


def test_limits_are_the_callers_to_set(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, _ = users
    wid = run(
        accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a", "A1"), max_watchlists=2)
    ).value.id
    run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("b"), max_watchlists=2))
    full = fails(
        accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("c"), max_watchlists=2)
    )
    assert isinstance(full, Conflict) and full.code == "limit_reached"
    assert "you have 2 watchlists" in full.message

    long = fails(
        accounts_db,
        lambda db: us.create_watchlist(db, ada, watchlist("d", "A1", "A2", "A3"), max_symbols=2),
    )
    assert (long.status, long.code) == (422, "too_many_symbols")
    run(accounts_db, lambda db: us.add_symbol(db, ada, wid, "A2", max_symbols=2))
    over = fails(accounts_db, lambda db: us.add_symbol(db, ada, wid, "A3", max_symbols=2))
    assert over.code == "too_many_symbols" and "at most 2 symbols" in over.message
    # A symbol already in a full list is no addition.
    assert run(
        accounts_db, lambda db: us.add_symbol(db, ada, wid, "A1", max_symbols=2)
    ).value.symbols == ["A1", "A2"]

    preset = PresetIn(name="p", filter=ScanFilter())
    run(accounts_db, lambda db: us.create_preset(db, ada, preset, max_presets=1))
    again = PresetIn(name="q", filter=ScanFilter())
    assert fails(accounts_db, lambda db: us.create_preset(db, ada, again, max_presets=1)).code == (
        "limit_reached"
    )
    many = IgnoreList(symbols=["A1", "A2", "A3"])
    assert fails(accounts_db, lambda db: us.set_ignored(db, ada, many, max_symbols=2)).code == (
        "too_many_symbols"
    )


def test_names_are_unique_per_user_only(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, bob = users
    first = run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("majors"))).value
    run(accounts_db, lambda db: us.create_watchlist(db, bob, watchlist("majors")))
    other = run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("alts"))).value
    taken = fails(
        accounts_db, lambda db: us.update_watchlist(db, ada, other.id, watchlist("majors"))
    )
    assert (taken.status, taken.code) == (409, "name_taken")
    kept = run(
        accounts_db, lambda db: us.update_watchlist(db, ada, first.id, watchlist("majors", "X"))
    )
    assert kept.value.symbols == ["X"]
    run(accounts_db, lambda db: us.create_preset(db, ada, PresetIn(name="p", filter=ScanFilter())))
    dup = PresetIn(name="p", filter=ScanFilter())
    assert fails(accounts_db, lambda db: us.create_preset(db, ada, dup)).code == "name_taken"


def test_another_users_rows_are_not_found(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, bob = users
    wid = run(
        accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a", "BTCUSDT"))
    ).value.id
    pid = run(
        accounts_db, lambda db: us.create_preset(db, ada, PresetIn(name="p", filter=ScanFilter()))
    ).value.id
    attempts: list[Callable[[AsyncSession], Awaitable[Any]]] = [
        lambda db: us.get_watchlist(db, bob, wid),
        lambda db: us.update_watchlist(db, bob, wid, watchlist("mine")),
        lambda db: us.add_symbol(db, bob, wid, "ETHUSDT"),
        lambda db: us.remove_symbol(db, bob, wid, "BTCUSDT"),
        lambda db: us.delete_watchlist(db, bob, wid),
        lambda db: us.get_preset(db, bob, pid),
        lambda db: us.update_preset(db, bob, pid, PresetIn(name="x", filter=ScanFilter())),
        lambda db: us.delete_preset(db, bob, pid),
        lambda db: us.apply_lists(db, bob, ScanFilter(), watchlist=wid, ignored=False),
    ]
    for attempt in attempts:
        assert isinstance(fails(accounts_db, attempt), NotFound)
    assert run(accounts_db, lambda db: us.list_watchlists(db, bob)) == []
    assert run(accounts_db, lambda db: us.list_presets(db, bob)) == []
    assert run(accounts_db, lambda db: us.get_watchlist(db, ada, wid)).symbols == ["BTCUSDT"]
    assert run(accounts_db, lambda db: us.get_preset(db, ada, pid)).name == "p"


def test_deleting_says_which_id_went(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, _ = users
    wid = run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a"))).value.id
    gone = run(accounts_db, lambda db: us.delete_watchlist(db, ada, wid))
    assert gone.body() == {"kind": "watchlist", "deleted": wid}
    assert run(accounts_db, lambda db: us.list_watchlists(db, ada)) == []
    assert isinstance(fails(accounts_db, lambda db: us.get_watchlist(db, ada, wid)), NotFound)


def test_presets_keep_a_validated_filter(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, _ = users
    scan = ScanFilter.model_validate(
        {"quotes": ["usdt"], "conditions": [{"metric": "change_pct_5m", "op": ">=", "value": 3}]}
    )
    made = run(
        accounts_db, lambda db: us.create_preset(db, ada, PresetIn(name="movers", filter=scan))
    )
    assert made.value.filter == scan
    renamed = PresetIn(name="gainers", filter=scan.model_copy(update={"limit": 20}))
    run(accounts_db, lambda db: us.update_preset(db, ada, made.value.id, renamed))
    [stored] = run(accounts_db, lambda db: us.list_presets(db, ada))
    assert (stored.name, stored.filter.limit, stored.filter.quotes) == ("gainers", 20, ("USDT",))
    with pytest.raises(InvalidRequest, match=r"invalid preset: filter\.sort"):
        parse(PresetIn, {"name": "x", "filter": {"sort": "pric"}}, "preset")
    deleted = run(accounts_db, lambda db: us.delete_preset(db, ada, made.value.id))
    assert deleted.body() == {"kind": "preset", "deleted": made.value.id}


def test_ignore_list_and_preferences(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, bob = users
    assert run(accounts_db, lambda db: us.get_ignored(db, ada)).symbols == []
    assert run(accounts_db, lambda db: us.get_preferences(db, ada)) == Preferences()
    ignored = IgnoreList(symbols=["usdcusdt", "binance:spot:FDUSDUSDT"])
    change = run(accounts_db, lambda db: us.set_ignored(db, ada, ignored))
    assert change.body() == {
        "kind": "ignored",
        "ignored": {"symbols": ["USDCUSDT", "binance:spot:FDUSDUSDT"]},
    }
    prefs = Preferences(columns=["symbol", "rsi_14"], sort="rsi_14", theme="dark", interval="5m")
    run(accounts_db, lambda db: us.set_preferences(db, ada, prefs))
    assert run(accounts_db, lambda db: us.get_preferences(db, ada)) == prefs
    assert run(accounts_db, lambda db: us.get_ignored(db, ada)).symbols == [
        "USDCUSDT",
        "binance:spot:FDUSDUSDT",
    ]
    assert run(accounts_db, lambda db: us.get_ignored(db, bob)).symbols == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"layout": "grid"}, "Extra inputs are not permitted"),
        ({"columns": ["symbol", "nonsense"]}, "unknown columns"),
        ({"columns": ["symbol", "symbol"]}, "listed twice"),
        ({"sort": "pric"}, "cannot sort by"),
        ({"interval": "2m"}, "unknown interval"),
        ({"theme": "pink"}, "theme"),
    ],
)
def test_preferences_refuse_what_the_board_does_not_know(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse(Preferences, data, "preferences")


def test_preferences_saved_by_an_older_release_fall_back_to_the_defaults(
    accounts_db: AccountsDb, users: tuple[int, int]
) -> None:
    ada, _ = users
    run(accounts_db, lambda db: us.set_preferences(db, ada, Preferences(theme="dark")))

    async def corrupt(db: AsyncSession) -> None:
        await db.execute(
            update(UserState).where(UserState.user_id == ada).values(preferences={"gone": 1})
        )

    run(accounts_db, corrupt)
    assert run(accounts_db, lambda db: us.get_preferences(db, ada)) == Preferences()
    assert run(accounts_db, lambda db: us.get_state(db, ada)).preferences == Preferences()


def test_the_whole_state_at_once(accounts_db: AccountsDb, users: tuple[int, int]) -> None:
    ada, bob = users
    empty = run(accounts_db, lambda db: us.get_state(db, bob))
    assert (empty.version, empty.watchlists, empty.ignored, empty.presets) == (0, [], [], [])
    w = run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a", "BTCUSDT"))).value
    p = run(
        accounts_db, lambda db: us.create_preset(db, ada, PresetIn(name="p", filter=ScanFilter()))
    ).value
    run(accounts_db, lambda db: us.set_ignored(db, ada, IgnoreList(symbols=["X"])))
    state = run(accounts_db, lambda db: us.get_state(db, ada))
    assert (state.version, state.watchlists, state.presets, state.ignored) == (3, [w], [p], ["X"])
    assert run(accounts_db, lambda db: us.get_state(db, bob)).version == 0


def test_lists_resolve_into_a_scanner_filter(
    accounts_db: AccountsDb, users: tuple[int, int]
) -> None:
    ada, _ = users
    wid = run(
        accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("a", "SOLUSDT", "BTCUSDT"))
    ).value.id
    run(accounts_db, lambda db: us.set_ignored(db, ada, IgnoreList(symbols=["USDCUSDT"])))
    base = ScanFilter(ignore=("FDUSDUSDT",), limit=7)
    resolved = run(
        accounts_db, lambda db: us.apply_lists(db, ada, base, watchlist=wid, ignored=True)
    )
    assert resolved.watch == ("BTCUSDT", "SOLUSDT")
    assert resolved.ignore == ("FDUSDUSDT", "USDCUSDT")
    assert resolved.limit == 7
    only_ignored = run(
        accounts_db, lambda db: us.apply_lists(db, ada, base, watchlist=None, ignored=True)
    )
    assert (only_ignored.watch, only_ignored.ignore) == ((), ("FDUSDUSDT", "USDCUSDT"))

    both = ScanFilter(watch=("ETHUSDT",))
    clash = fails(
        accounts_db, lambda db: us.apply_lists(db, ada, both, watchlist=wid, ignored=False)
    )
    assert "either watch or a watchlist" in clash.message
    empty = run(accounts_db, lambda db: us.create_watchlist(db, ada, watchlist("empty"))).value.id
    nothing = fails(
        accounts_db, lambda db: us.apply_lists(db, ada, base, watchlist=empty, ignored=False)
    )
    assert nothing.code == "empty_watchlist"


def test_an_ignore_list_too_long_for_a_filter_is_a_clear_error(
    accounts_db: AccountsDb, users: tuple[int, int]
) -> None:
    ada, _ = users
    mine = IgnoreList(symbols=[f"A{i}" for i in range(600)])
    run(accounts_db, lambda db: us.set_ignored(db, ada, mine))
    base = ScanFilter(ignore=tuple(f"B{i}" for i in range(600)))
    error = fails(
        accounts_db, lambda db: us.apply_lists(db, ada, base, watchlist=None, ignored=True)
    )
    assert error.status == 422 and error.message.startswith("invalid filter: ignore")

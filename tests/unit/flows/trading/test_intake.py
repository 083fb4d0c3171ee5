"""The paper process's intake: which records reach the engine, and the clock a command
is stamped with."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from flows.trading.engine import PaperEngine
from flows.trading.intake import Intake
from flows.trading.interest import Pairs
from flows.trading.process import Accounts, PaperCounters, PaperTopics
from flows.trading.settings import PaperSettings
from schemas.quotes import Quote, encode_quote
from schemas.topics import CONTROL_HEADER
from schemas.trades import Trade, encode_trade
from schemas.trading import AccountOpened, OpenAccount, encode
from tests.unit.flows.trading.conftest import EX, SYMBOLS, T0

NAMES = PaperTopics()


class Message:
    """What the intake reads of a consumer's message."""

    def __init__(self, topic: str, key: str, value: bytes, headers: Any = None) -> None:
        self._topic, self._key, self._value, self._headers = topic, key, value, headers

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key.encode()

    def value(self) -> bytes:
        return self._value

    def headers(self) -> Any:
        return self._headers


def _intake() -> Intake:
    engine = PaperEngine(PaperSettings(), SYMBOLS)
    return Intake(engine, NAMES, PaperCounters(), Pairs(SYMBOLS), Accounts())


def _trade(t: int, symbol: str = "ETHUSDT") -> Message:
    trade = Trade(EX, "spot", symbol, t, D("100"), D("1"), T0 + t, False)
    return Message(NAMES.trades, trade.key, encode_trade(trade))


def _quote(t: int, symbol: str = "ETHUSDT") -> Message:
    # A quote stamped only with its receive time (Binance spot bookTicker has no E).
    quote = Quote(EX, "spot", symbol, t, D("99"), D("1"), D("101"), D("1"), T0 + t)
    return Message(NAMES.quotes, quote.key, encode_quote(quote))


def _open(account: str) -> Message:
    command = OpenAccount(
        command_id=f"open-{account}", account_id=account, sent_us=0, owner="u1",
        name=account, market="spot", exchange=EX, balances={"USDT": D(1000)},
    )  # fmt: skip
    return Message(NAMES.trading.orders, account, encode(command))


def _opened_at(events: list[Any]) -> int:
    [opened] = [e for e in events if isinstance(e, AccountOpened)]
    return int(opened.time_us)


def test_a_command_is_stamped_with_the_last_market_record_read_though_none_was_needed() -> None:
    intake = _intake()
    # No account needs ETHUSDT: its records are read, not applied, yet they are the
    # market's time; before this the first account opened at time 0 (1970).
    events, _ = intake.process([_trade(5), _trade(9), _open("a1")])
    assert _opened_at(events) == T0 + 9
    assert intake.counters.applied == 0
    # A quote without an exchange time counts with its receive time.
    events, _ = intake.process([_quote(20), _open("a2")])
    assert _opened_at(events) == T0 + 20


def test_the_clock_never_goes_back_and_a_control_record_does_not_move_it() -> None:
    intake = _intake()
    events, _ = intake.process([_trade(30), _open("a1")])
    assert _opened_at(events) == T0 + 30
    events, _ = intake.process([_trade(10), _open("a2")])  # an older record read later
    assert _opened_at(events) == T0 + 30
    control = _trade(99)
    control._headers = [(CONTROL_HEADER, b"end")]  # a replay's end marker, not market data
    events, _ = intake.process([control, _open("a3")])
    assert _opened_at(events) == T0 + 30


def test_with_no_market_record_read_a_command_keeps_the_engine_clock() -> None:
    intake = _intake()
    events, _ = intake.process([_open("a1")])
    assert _opened_at(events) == 0

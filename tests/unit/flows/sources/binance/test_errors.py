"""Reading Binance's refusals: Retry-After, the length of a ban, ``{"code", "msg"}``."""

from __future__ import annotations

import pytest

from flows.sources.binance.errors import DEFAULT_BAN_S, ban_s, error_of, retry_after_s


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), ("0", 0.0), ("1.5", 1.5), (None, None), ("soon", None), ("-5", None)],
)
def test_retry_after_is_seconds_or_nothing(header, seconds) -> None:
    assert retry_after_s(header) == seconds


def test_a_ban_lasts_its_retry_after_else_until_the_time_in_its_message() -> None:
    now = 1_700_000_000.0
    text = (
        '{"code":-1003,"msg":"Way too much request weight used; IP banned until '
        '1700000600000. Please use WebSocket Streams for live updates to avoid bans."}'
    )
    assert ban_s("120", text, now) == 120.0
    assert ban_s(None, text, now) == pytest.approx(600.0)
    assert ban_s("later", "I'm a teapot", now) == DEFAULT_BAN_S


def test_an_error_reply_gives_binances_code_and_message_or_its_text() -> None:
    assert error_of(b'{"code":-1121,"msg":"Invalid symbol."}') == (-1121, "Invalid symbol.")
    assert error_of(b"<html>Bad Gateway</html>\n") == (None, "<html>Bad Gateway</html>")
    assert error_of(b'{"error":"nope"}') == (None, '{"error":"nope"}')

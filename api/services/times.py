"""The time parameters the API takes: milliseconds since the epoch or ISO-8601, checked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from api.errors import InvalidRequest

MAX_TIME_MS = 7_258_118_400_000
"""2200-01-01T00:00:00Z: later than any candle, earlier than DateTime64(3)'s end."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TIME_PATTERN = (
    r"^(\d+"
    r"|\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?)?)$"
)
"""The forms of a time parameter the API takes, as the OpenAPI document states them:
milliseconds since the epoch, or an ISO-8601 date or date and time (UTC without an
offset). `is_time_form` holds a value to it before parsing; a day a month lacks and a time
outside the range the parameter allows are refused after."""

TIME_SCHEMA = {"pattern": TIME_PATTERN}
"""What a time parameter adds to its JSON schema (`json_schema_extra`): the pattern is
documented, and checked by `parse_time` with a message a person can act on."""

_TIME_FORM = re.compile(TIME_PATTERN)


def is_time_form(value: str) -> bool:
    """Whether a time parameter has one of the documented forms (`TIME_PATTERN`); Python's
    ISO-8601 parser takes more (`20240808`, `2024-08-08T23`) than the document says."""
    return _TIME_FORM.match(value) is not None


def iso_ms(value: str) -> int:
    """Milliseconds since the epoch of a time in a documented ISO-8601 form (`TIME_PATTERN`;
    UTC unless it gives an offset).

    Raises:
        ValueError: If it is not in one of those forms, or not a date and time.
    """
    if not is_time_form(value):
        raise ValueError(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


TIME_FORMS = "ms since the epoch or ISO-8601 (UTC unless it gives an offset)"

_TIME_HELP = "use milliseconds since the epoch or ISO-8601 UTC (2024-08-08T23:55:00Z)"


def parse_time(field: str, text: str) -> int:
    """A time bound of a history query, as a user gives it.

    Args:
        field: The parameter's name, for the error message.
        text: Milliseconds since the epoch (``1723161300000``) or ISO-8601
            (``2024-08-08T23:55:00Z``; without an offset it is UTC).

    Returns:
        Milliseconds since the epoch.

    Raises:
        InvalidRequest: If it is neither, or outside 1970 .. 2200.
    """
    value = text.strip()
    if value.isascii() and value.isdigit():
        ms = int(value) if len(value) <= 15 else MAX_TIME_MS + 1
    else:
        try:
            ms = iso_ms(value)
        except ValueError:
            raise InvalidRequest(f"{field}: {value[:40]!r} is not a time; {_TIME_HELP}") from None
    if not 0 <= ms <= MAX_TIME_MS:
        raise InvalidRequest(f"{field}: {value[:40]!r} is outside 1970 .. 2200; {_TIME_HELP}")
    return ms

"""REST parameters checked the way Binance checks them, and its error answers."""

from __future__ import annotations

import re
from collections.abc import Sequence

_INT_PARAM_RE = re.compile(r"^-?[0-9]{1,20}$")


class ApiError(Exception):
    """A REST error answered in Binance's shape: HTTP status and ``{"code", "msg"}``."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int | None = None):
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after


def check_params(params: dict[str, str], allowed: Sequence[str]) -> None:
    read = sum(1 for k in params if k in allowed)
    if read != len(params):
        raise ApiError(400, -1104, f"Not all sent parameters were read; read '{read}' "
                        f"parameter(s) but was sent '{len(params)}'.")  # fmt: skip


def limit_param(params: dict[str, str], default: int, most: int) -> int:
    value = int_param(params, "limit", 1, most)
    return default if value is None else value


def int_param(params: dict[str, str], name: str, lo: int, hi: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _INT_PARAM_RE.match(raw):
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                        "range is '^[0-9]{1,20}$'.")  # fmt: skip
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        raise ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    return value

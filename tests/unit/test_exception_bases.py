"""Every exception a package defines derives from that package's one base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from api.errors import ApiPackageError
from flows.errors import FlowError
from runtime.errors import RuntimeSetupError
from schemas.errors import SchemaError
from tickscan.errors import TickscanError

BASES: dict[str, type[Exception]] = {
    "api": ApiPackageError,
    "flows": FlowError,
    "runtime": RuntimeSetupError,
    "schemas": SchemaError,
    "tickscan": TickscanError,
}
# Alembic's environment script runs only inside an Alembic migration; `__main__` runs
# the command line.
NOT_IMPORTABLE = ("api.accounts.migrations", "tickscan.__main__")


def _modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if not info.name.startswith(NOT_IMPORTABLE):
            names.append(info.name)
    return names


def test_every_exception_derives_from_its_packages_base() -> None:
    seen: dict[str, list[str]] = {package: [] for package in BASES}
    strays = []
    for package, base in BASES.items():
        for name in _modules(package):
            module = importlib.import_module(name)
            for cls_name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != name or not issubclass(cls, BaseException):
                    continue
                seen[package].append(cls_name)
                if not issubclass(cls, base):
                    strays.append(f"{name}.{cls_name}")
    assert strays == []
    # The walk finds the packages' exceptions at all (and so could find a stray one).
    assert {"BinanceRestError", "UnreadableFile", "FlowError"} <= set(seen["flows"])
    assert {"ApiError", "ClientClosed", "BodyTooLarge"} <= set(seen["api"])
    assert {"InvalidTrade"} <= set(seen["schemas"])
    assert {"RunError", "ApiServerError"} <= set(seen["tickscan"])


def test_errors_that_are_bad_values_stay_value_errors() -> None:
    from flows.sources.binance.trades import BinanceDecodeError
    from flows.sources.files import UnreadableFile
    from schemas.trades import InvalidTrade

    for cls in (BinanceDecodeError, UnreadableFile, InvalidTrade):
        assert issubclass(cls, ValueError)

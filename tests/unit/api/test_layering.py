"""How the API's modules may lean on each other: routes are thin and independent, and
what a request needs comes through the typed dependencies, never from `app.state`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import api

API = Path(api.__file__).parent


def route_imports(source: str) -> list[str]:
    """The route modules a module's source imports (`api.routes...`, or relative ones)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # inside api/routes a relative import is another route
                found.append("." * node.level + (node.module or ""))
            elif node.module and (
                node.module == "api.routes" or node.module.startswith("api.routes.")
            ):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("api.routes")]
    return found


def _is_app(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "app") or (
        isinstance(node, ast.Name) and node.id == "app"
    )


def _reads_state(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "state" and _is_app(node.value)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and node.args[1].value == "state"
    )


def state_reads(source: str) -> list[int]:
    """Lines where a module's source reaches into an app's state: `x.app.state`,
    `app.state`, or `getattr(<app>, "state", ...)`."""
    return [node.lineno for node in ast.walk(ast.parse(source)) if _reads_state(node)]  # type: ignore[attr-defined]


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (API / folder).rglob("*.py"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from api.routes.scan import FILTER_QUERY_DOC\n", ["api.routes.scan"]),
        ("from api.routes import me_state\n", ["api.routes"]),
        ("import api.routes.candles\n", ["api.routes.candles"]),
        ("from .candles import ERRORS\n", [".candles"]),
        ("from api.services.board import board_filter\nfrom api.deps import StoreDep\n", []),
    ],
)
def test_route_imports_are_recognised(source: str, expected: list[str]) -> None:
    assert route_imports(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('hub = getattr(request.app.state, "hub", None)\n', [1]),
        ("billing = connection.app.state.billing\n", [1]),
        ("x = 1\nstore = app.state.store\n", [2]),
        ('hub = getattr(getattr(self.config.app, "state", None), "hub", None)\n', [1]),
        ("def f(hub: HubDep) -> None:\n    state = {'app': 1}\n", []),
    ],
)
def test_state_reads_are_recognised(source: str, expected: list[int]) -> None:
    assert state_reads(source) == expected


def test_no_route_module_imports_another() -> None:
    """Routes share through services and deps modules, so each stays one thin area."""
    found = {
        str(path.relative_to(API)): imports
        for path in _modules("routes")
        if (imports := route_imports(path.read_text()))
    }
    assert found == {}, f"route modules importing routes: {found}"


def test_routes_and_services_never_read_app_state() -> None:
    """What a handler needs it declares as a typed dependency (api/deps.py,
    api/accounts/deps.py, api/live/deps.py); only those accessors read `app.state`."""
    found = {
        str(path.relative_to(API)): lines
        for path in _modules("routes", "services")
        if (lines := state_reads(path.read_text()))
    }
    assert found == {}, f"app.state read outside the deps modules (file: lines): {found}"


def test_the_checks_see_the_modules() -> None:
    """The walks above read the real tree (an empty glob would pass them vacuously)."""
    assert {"scan.py", "stream.py", "me_state.py", "ws.py"} <= {p.name for p in _modules("routes")}
    assert {"board.py", "filters.py"} <= {p.name for p in _modules("services")}

"""Every API error has one JSON shape, FastAPI's own parameter errors included."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import NotFound, install_error_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/things/{name}")
    def thing(name: str, limit: int = 10) -> dict[str, int]:
        if name == "missing":
            raise NotFound(f"no thing called {name}")
        return {"limit": limit}

    return app


def test_a_service_error_keeps_its_status_code_and_message() -> None:
    response = TestClient(_app()).get("/things/missing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no thing called missing"}}


def test_a_bad_parameter_says_which_and_what_it_got_in_the_same_shape() -> None:
    response = TestClient(_app()).get("/things/a", params={"limit": "abc"})
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["message"].startswith("query.limit: ")
    assert "'abc'" in body["error"]["message"]

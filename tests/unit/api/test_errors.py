"""Every API error has one JSON shape, `{"error": {"code": ..., "message": ...}}`: the
services' own errors, FastAPI's parameter errors, a body that is not JSON, and the router's
404 and 405 alike; and no error answer repeats what the client sent."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import BaseModel, Field

from api.errors import NotFound, install_error_handlers

SECRET = "hunter2-but-much-longer-than-allowed"


class LoginIn(BaseModel):
    email: str
    password: str = Field(max_length=20)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/things/{name}")
    def thing(name: str, limit: int = 10) -> dict[str, int]:
        if name == "missing":
            raise NotFound(f"no thing called {name}")
        return {"limit": limit}

    @app.put("/things/{name}")
    def put_thing(name: str) -> dict[str, str]:
        return {"name": name}

    @app.delete("/things/{name}")
    def delete_thing(name: str) -> dict[str, str]:
        return {"name": name}

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("the secret database password is hunter2")

    @app.post("/login")
    def login(body: LoginIn) -> dict[str, str]:
        return {"email": body.email}

    # Routes of an included router, as every area of the API is.
    router = APIRouter(prefix="/api/v1/lists")

    @router.get("/{list_id}")
    def get_list(list_id: int) -> dict[str, int]:
        return {"id": list_id}

    @router.put("/{list_id}")
    def put_list(list_id: int) -> dict[str, int]:
        return {"id": list_id}

    @router.post("/{list_id}/items")
    def add_item(list_id: int) -> dict[str, int]:
        return {"id": list_id}

    app.include_router(router)
    return app


def _envelope(response: Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, str] = body["error"]
    return error


def test_a_service_error_keeps_its_status_code_and_message() -> None:
    response = TestClient(_app()).get("/things/missing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no thing called missing"}}


def test_a_bad_parameter_says_which_in_the_same_shape_without_repeating_it() -> None:
    response = TestClient(_app()).get("/things/a", params={"limit": "abcdefgh"})
    assert response.status_code == 422
    error = _envelope(response)
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("query.limit: Input should be a valid integer")
    assert "abcdefgh" not in response.text


def test_a_password_is_never_repeated_in_a_validation_error() -> None:
    client = TestClient(_app())
    too_long = client.post("/login", json={"email": "ada@example.com", "password": SECRET})
    wrong_type = client.post("/login", json={"email": ["x"], "password": {"p": SECRET}})
    for response in (too_long, wrong_type):
        assert response.status_code == 422
        _envelope(response)
        assert SECRET not in response.text
        assert "ada@example.com" not in response.text
    assert "body.password" in too_long.json()["error"]["message"]


def test_a_large_invalid_body_gets_a_small_answer() -> None:
    big = {"email": "x" * 1_000_000, "password": 7, "items": list(range(50_000))}
    items = [{"email": i, "password": i} for i in range(5_000)]
    client = TestClient(_app())
    for body in (big, items):
        response = client.post("/login", json=body)
        assert response.status_code == 422
        _envelope(response)
        assert len(response.content) < 2_000


def test_a_body_that_is_not_json_is_a_400_in_the_same_shape() -> None:
    client = TestClient(_app())
    headers = {"Content-Type": "application/json"}
    for raw in (b'{"email": "a@b.c", "password":', b"\xff\xfe not utf-8", b"{'a': 1}"):
        response = client.post("/login", content=raw, headers=headers)
        assert response.status_code == 400, (raw, response.text)
        assert _envelope(response)["code"] == "malformed_body"


def test_an_unknown_path_is_a_404_in_the_same_shape() -> None:
    response = TestClient(_app()).get("/nothing/here")
    assert response.status_code == 404
    assert _envelope(response)["code"] == "not_found"


def test_a_wrong_method_is_a_405_that_lists_every_method_of_the_path() -> None:
    response = TestClient(_app()).patch("/things/a", json={})
    assert response.status_code == 405
    assert _envelope(response)["code"] == "method_not_allowed"
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed == {"GET", "PUT", "DELETE"}
    in_router = TestClient(_app()).delete("/api/v1/lists/3")
    assert in_router.status_code == 405
    assert _envelope(in_router)["code"] == "method_not_allowed"
    assert in_router.headers["allow"] == "GET, PUT"
    # A path with one method lists just that one.
    only_post = TestClient(_app()).get("/login")
    assert only_post.status_code == 405
    assert only_post.headers["allow"] == "POST"
    assert _envelope(only_post)["code"] == "method_not_allowed"


def test_a_crash_is_a_500_in_the_same_shape_that_tells_nothing_of_the_cause() -> None:
    response = TestClient(_app(), raise_server_exceptions=False).get("/crash")
    assert response.status_code == 500
    assert _envelope(response)["code"] == "internal_error"
    assert "hunter2" not in response.text

"""`/api/v1/ws`: the two-way live protocol (subscribe, unsubscribe, change filter, ping).

The protocol is in `api.live.protocol` and docs/websocket.md; this module moves its
messages between the socket and the hub. A handshake that carries an access token (the
cookie, or `Authorization: Bearer`) signs the connection in; so does an `auth` message
later, but a handshake that carries the session cookie from another site's page is refused
(403, see `api.origins`). Errors in a client's messages are answered with `error`
messages; the socket is closed only with a code and a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from api.accounts.deps import bearer_token, optional_accounts
from api.errors import TooManyClients, Unavailable
from api.live.clients import Client, ClientClosed
from api.live.deps import get_hub
from api.live.protocol import Session
from api.origins import SiteOrigins, foreign_cookie_origin

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["live"])

POLICY_VIOLATION = 1008
"""Close code: the client broke the rules (it stayed too slow, or sent too many messages,
for too long)."""
INTERNAL_ERROR = 1011
"""Close code: the server failed."""
TRY_AGAIN_LATER = 1013
"""Close code: the process serves as many clients as it may; connect again later."""
GOING_AWAY = 1001
"""Close code: the server is shutting down."""

CLOSE_CODES = {
    "too_slow": POLICY_VIOLATION,
    "rate_limited": POLICY_VIOLATION,
    "shutdown": GOING_AWAY,
}


@router.websocket("/ws", name="live WebSocket")
async def websocket(socket: WebSocket) -> None:
    """One WebSocket client: its operations in, its subscriptions' messages out."""
    # The typed accessors are called, not declared: the handler needs nothing but its
    # socket, so it runs the same whoever drives it (the router or a bare socket).
    accounts = optional_accounts(socket)
    foreign = None
    if accounts is not None:  # without accounts no cookie signs anyone in
        foreign = foreign_cookie_origin(socket, SiteOrigins.of(accounts.settings))
    if foreign is not None:
        # Closed before it is accepted: the handshake is answered 403.
        logger.warning("WebSocket refused: a page of %r sent the session cookie", foreign[:200])
        await socket.close(POLICY_VIOLATION)
        return
    await socket.accept()
    hub = get_hub(socket)
    if hub is None:
        await socket.close(TRY_AGAIN_LATER, "this API process serves no live data")
        return
    try:
        client = hub.connect("ws")
    except TooManyClients as exc:
        await socket.close(TRY_AGAIN_LATER, exc.message)
        return
    except Unavailable as exc:  # the server is shutting down
        await socket.close(GOING_AWAY, exc.message)
        return
    session = Session(hub, client, accounts)
    reader = asyncio.create_task(_read(socket, session, bearer_token(socket)))
    writer = asyncio.create_task(_write(socket, client, hub.policy.evict_after_s))
    try:
        done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a failure in either ends the connection with 1011
    except Exception:
        logger.exception("WebSocket connection failed")
        await _close(socket, INTERNAL_ERROR, "internal error")
    finally:
        for task in (reader, writer):
            task.cancel()
        # Before any await: a cancelled handler (server shutdown) must still let go of
        # its client, or the hub would keep it, and its user's pushes, for ever.
        hub.disconnect(client)
        await asyncio.gather(reader, writer, return_exceptions=True)


async def _read(socket: WebSocket, session: Session, token: str | None) -> None:
    """Sign in with the handshake's token, then apply the client's messages until it
    disconnects."""
    await session.start(token)
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        await session.handle(data)


async def _write(socket: WebSocket, client: Client, timeout_s: float) -> None:
    """Send what the client's queue receives; close with a reason when the hub closes it."""
    try:
        while True:
            batch = await client.next()
            # A client that cannot take its messages for as long as it may lag is gone.
            async with asyncio.timeout(timeout_s):
                for sub, message in batch:
                    await socket.send_text(message.ws(None if sub is None else sub.id))
    except ClientClosed as closed:
        await _close(socket, CLOSE_CODES.get(closed.code, POLICY_VIOLATION), closed.message)
    except TimeoutError:
        client.evict(f"too slow: took no data for {timeout_s:.0f} s")
        why = client.closed
        assert why is not None  # by this eviction, or by the hub while the send hung
        await _close(socket, CLOSE_CODES.get(why.code, POLICY_VIOLATION), why.message)
    except (WebSocketDisconnect, OSError):
        return


async def _close(socket: WebSocket, code: int, reason: str) -> None:
    # Already closed by the other side, or too stuck to take even the close frame: the
    # attempt is all there is to do.
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError, TimeoutError):
        async with asyncio.timeout(5):
            await socket.close(code, reason[:120])  # a close reason is at most 123 bytes

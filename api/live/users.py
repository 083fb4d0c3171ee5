"""Which live clients belong to which signed-in user, and the push of their state changes.

`UserClients.publish` is the one way a change of a user's state reaches their live
sessions. It delivers within this process only. With several API processes behind a
load balancer, `publish` becomes a send to a bus (PostgreSQL LISTEN/NOTIFY, Redis
pub/sub) whose listener in each process calls `deliver` for that process's clients;
callers stay as they are.
"""

from __future__ import annotations

from typing import Any

from api.accounts.user_state_models import Change
from api.live.clients import Client, Message, control


def user_state_message(change: Change[Any]) -> Message:
    """The `user_state` message of a change: `{"version": N, "change": {...}}`."""
    return control("user_state", version=change.version, change=change.body())


class UserClients:
    """The live clients of each signed-in user in this process."""

    def __init__(self) -> None:
        self._clients: dict[int, set[Client]] = {}
        self._users: dict[Client, int] = {}

    def join(self, client: Client, user_id: int) -> None:
        """Count a client as the user's (a client signed in as someone else moves over)."""
        self.leave(client)
        self._users[client] = user_id
        self._clients.setdefault(user_id, set()).add(client)

    def leave(self, client: Client) -> None:
        """Forget a client (signed out or disconnected); safe for one never joined."""
        user_id = self._users.pop(client, None)
        if user_id is None:
            return
        clients = self._clients[user_id]
        clients.discard(client)
        if not clients:
            del self._clients[user_id]

    def user_of(self, client: Client) -> int | None:
        """The user a client is signed in as, if any."""
        return self._users.get(client)

    def clients_of(self, user_id: int) -> frozenset[Client]:
        """The user's live clients in this process."""
        return frozenset(self._clients.get(user_id, ()))

    def publish(self, user_id: int, change: Change[Any], origin: Client | None = None) -> int:
        """Tell the user's live sessions of a committed change.

        Args:
            user_id: Whose state changed.
            change: The change.
            origin: The client that made it (it has its answer already), if live.

        Returns:
            How many clients were told.
        """
        return self.deliver(user_id, user_state_message(change), origin)

    def deliver(self, user_id: int, message: Message, origin: Client | None = None) -> int:
        """Queue one message for each of the user's clients here but `origin`."""
        told = 0
        for client in self._clients.get(user_id, ()):
            if client is not origin:
                client.put(None, message)
                told += 1
        return told

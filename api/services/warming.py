"""How far the history fetched at start has come: symbols done of those that lacked it.

Live ingest (`flows.ingest.history`) writes its progress to ``history_progress`` every few
seconds, so an API in another process can say the board is still warming up. A row not
marked finished that has not been renewed for `STALE_AFTER_S` belongs to an ingest that
stopped: it is not a warm-up any more.
"""

from __future__ import annotations

import logging

from api.store import Store

logger = logging.getLogger(__name__)

STALE_AFTER_S = 60
"""A running fetch renews its row every 10 s (by default); older means it has stopped."""

_SQL = """
SELECT sum(done), sum(total)
FROM
(
    SELECT
        argMax(done, updated_at) AS done,
        argMax(total, updated_at) AS total,
        argMax(finished, updated_at) AS finished,
        max(updated_at) AS at
    FROM {db:Identifier}.history_progress
    GROUP BY exchange, market
)
WHERE NOT finished AND at > now64(3) - toIntervalSecond({stale:UInt32})
"""


async def warming(store: Store) -> tuple[int, int] | None:
    """Symbols whose history is done, and how many lacked it, over every market warming.

    Returns:
        ``(done, total)``, or None when nothing is warming up.
    """
    try:
        _, rows = await store.query(_SQL, {"db": store.database, "stale": STALE_AFTER_S})
    except Exception:  # a store not migrated yet has no progress to show; health goes on
        logger.debug("history progress unreadable", exc_info=True)
        return None
    if not rows or not rows[0][1]:
        return None
    done, total = rows[0]
    return int(done), int(total)

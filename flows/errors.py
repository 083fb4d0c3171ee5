"""The base of every exception the flows package raises."""

from __future__ import annotations


class FlowError(Exception):
    """Base of every error the `flows` package raises: its connectors, sinks and ingest.

    Errors that are also bad values (an undecodable message, an unreadable file, a row
    that cannot be stored) are `ValueError`s as well.
    """

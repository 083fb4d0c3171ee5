"""The base of every exception the schemas package raises."""

from __future__ import annotations


class SchemaError(ValueError):
    """Base of every error the `schemas` package raises: a message that breaks its shape's
    rules (a `ValueError`, as any bad value)."""

"""Exceptions raised while setting up the runtime plumbing (broker, topics, ClickHouse)."""

from __future__ import annotations


class RuntimeSetupError(Exception):
    """Base of every error the `runtime` package raises."""


class BrokerStartError(RuntimeSetupError):
    """The embedded Kafka-protocol broker could not be found, started or reached."""


class TopicSetupError(RuntimeSetupError):
    """A Kafka topic could not be created, or its metadata never became complete."""


class ClickHouseSetupError(RuntimeSetupError):
    """A ClickHouse DSN is malformed or its engine cannot be opened."""


class MigrationError(RuntimeSetupError):
    """A DDL migration file is malformed, edited after being applied, or failed to apply."""

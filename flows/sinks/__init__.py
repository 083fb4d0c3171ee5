"""Connectors that take flow output out: ClickHouse and Kafka."""

"""Plumbing every process needs: settings, Kafka and ClickHouse clients, broker, supervisor."""

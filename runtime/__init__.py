"""Plumbing every process needs: settings, Kafka and ClickHouse clients, the embedded broker."""

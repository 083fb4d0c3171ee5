"""Connectors that bring data into flows: Kafka, exchange decoders, capture and archive files."""

"""Ingest's pure parts: dead letters and the delivery ledger behind a publisher's report."""

from __future__ import annotations

import base64

from confluent_kafka import KafkaError, Message

from flows.ingest.delivery import DeliveryLedger, PartitionSpan
from flows.ingest.trades import STAGE, dead_letter
from flows.sources.files import Rejected


def delivered(partition: int, offset: int, topic: str = "md.trades.v1") -> Message:
    return Message(topic=topic, partition=partition, offset=offset)


def test_dead_letter_keeps_utf8_input_as_text_and_says_where_it_came_from() -> None:
    raw = b'{"e":"trade","p":"abc"}'
    letter = dead_letter(
        Rejected("capture.gz:17", raw, "bad_decimal", "p is not a decimal"), at_ms=1_234
    )
    assert letter.stage == STAGE == "ingest"
    assert letter.reason == "bad_decimal"
    assert "p is not a decimal" in letter.detail and "capture.gz:17" in letter.detail
    assert (letter.value, letter.value_encoding) == (raw.decode(), "utf-8")
    assert letter.at_ms == 1_234


def test_dead_letter_keeps_binary_input_as_base64() -> None:
    raw = b"\xff\xfe\x00garbage"
    letter = dead_letter(Rejected("x:1", raw, "bad_line", "not UTF-8"), at_ms=0)
    assert letter.value_encoding == "base64"
    assert base64.b64decode(letter.value) == raw


def test_ledger_spans_each_partition_from_first_to_last_delivery() -> None:
    ledger = DeliveryLedger()
    for partition, offset in [(0, 10), (1, 3), (0, 11), (0, 12), (1, 4)]:
        ledger.on_trade(None, delivered(partition, offset))
    ledger.on_end_marker(None, delivered(0, 13))
    ledger.on_end_marker(None, delivered(1, 5))
    ledger.on_end_marker(None, delivered(2, 0))  # a partition that got no trade

    report = ledger.report("md.trades.v1")
    assert report.published == 5
    assert report.delivery_failures == 0 and report.first_error is None
    assert report.partitions == {
        0: PartitionSpan(10, 12, 13),
        1: PartitionSpan(3, 4, 5),
        2: PartitionSpan(None, None, 0),
    }


def test_ledger_span_survives_out_of_order_reports() -> None:
    ledger = DeliveryLedger()
    for offset in (7, 5, 9, 6):
        ledger.on_trade(None, delivered(0, offset))
    assert ledger.report("t").partitions[0] == PartitionSpan(5, 9, None)


def test_failed_deliveries_are_counted_with_the_first_error_and_never_spanned() -> None:
    ledger = DeliveryLedger()
    ledger.on_trade(None, delivered(0, 1))
    ledger.on_trade(KafkaError(KafkaError._MSG_TIMED_OUT), Message(topic="t", partition=2))
    ledger.on_dead_letter(KafkaError(KafkaError._PURGE_QUEUE), Message(topic="dl"))
    ledger.on_dead_letter(None, delivered(0, 0, topic="dl"))

    report = ledger.report("t")
    assert report.published == 1
    assert report.rejected == 1
    assert report.delivery_failures == 2
    assert report.first_error is not None and "t[2]" in report.first_error
    assert set(report.partitions) == {0}

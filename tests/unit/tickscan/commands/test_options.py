"""What every command does with a bad value, a missing Kafka and a failure while setting up."""

from __future__ import annotations

import pytest
import typer

from runtime.errors import RuntimeSetupError
from runtime.settings import KafkaSettings
from tickscan.commands.options import check_market, check_start, failing_as, require_kafka
from tickscan.settings import Settings


def test_a_bad_market_or_start_exits_2_saying_what_is_allowed(capsys) -> None:
    assert check_market("usdm") == "usdm" and check_start("beginning") == "beginning"
    with pytest.raises(typer.Exit) as market:
        check_market("perp")
    with pytest.raises(typer.Exit) as start:
        check_start("now")
    assert market.value.exit_code == start.value.exit_code == 2
    assert capsys.readouterr().err.splitlines() == [
        "--market must be spot or usdm, not 'perp'",
        "--start must be beginning or end, not 'now'",
    ]


def test_kafka_comes_from_the_option_then_the_settings_else_the_command_exits_2(
    tmp_path, capsys
) -> None:
    configured = Settings(data_dir=tmp_path, kafka=KafkaSettings(bootstrap="k:9092"))
    assert require_kafka("candles", "opt:9092", configured) == "opt:9092"
    assert require_kafka("candles", None, configured) == "k:9092"
    with pytest.raises(typer.Exit) as missing:
        require_kafka("candles", None, Settings(data_dir=tmp_path, kafka=KafkaSettings()))
    assert missing.value.exit_code == 2
    assert capsys.readouterr().err == (
        "candles needs a Kafka cluster: --kafka or TICKSCAN_KAFKA__BOOTSTRAP\n"
    )


def test_a_set_up_failure_or_a_named_error_is_one_line_and_exit_1(capsys) -> None:
    with pytest.raises(typer.Exit) as setup, failing_as("migrate"):
        raise RuntimeSetupError("no ClickHouse at x")
    with pytest.raises(typer.Exit) as named, failing_as("replay", KeyError):
        raise KeyError("k")
    assert setup.value.exit_code == named.value.exit_code == 1
    assert capsys.readouterr().err.splitlines() == [
        "migrate failed: no ClickHouse at x",
        "replay failed: 'k'",
    ]
    with pytest.raises(ValueError), failing_as("replay", KeyError):
        raise ValueError("a bug is not a failure to report")

"""infra/docker-compose.yml cannot run here (no Docker engine): keep it coherent by reading it."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "docker-compose.yml"
APP_SERVICES = ("migrate", "candles", "ingest-spot", "ingest-usdm", "signals", "paper", "api")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def kafka_env(services: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in services["kafka"]["environment"].items()}


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` -> {NAME: (host, port)}."""
    result = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def test_expected_services_exist(services: dict[str, Any]) -> None:
    assert {"kafka", "clickhouse", *APP_SERVICES} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")


def test_every_depends_on_target_exists_and_waits_on_a_real_condition(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not one-shot"
            else:
                pytest.fail(f"{name} -> {target}: unexpected condition {condition}")


def test_app_services_start_after_their_stores(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    candles = services["candles"]["depends_on"]
    assert candles["kafka"]["condition"] == "service_healthy"
    assert candles["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["candles"]["command"][0] == "candles"


def test_kafka_kraft_combined_mode_is_coherent(kafka_env: dict[str, str]) -> None:
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = _listeners(kafka_env["KAFKA_LISTENERS"])
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        p.split(":") for p in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    controller = kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"]

    assert controller in listeners
    assert controller in protocols
    assert set(listeners) <= set(protocols)
    # The controller listener is never advertised to clients.
    assert controller not in advertised
    assert set(advertised) <= set(listeners)

    voters = dict(v.split("@") for v in kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
    assert kafka_env["KAFKA_NODE_ID"] in voters
    voter_host, voter_port = voters[kafka_env["KAFKA_NODE_ID"]].rsplit(":", 1)
    assert voter_host == "kafka"
    assert int(voter_port) == listeners[controller][1]

    inter_broker = kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert inter_broker in advertised
    assert advertised[inter_broker][0] == "kafka"
    assert kafka_env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_kafka_cluster_id_is_a_base64url_uuid(kafka_env: dict[str, str]) -> None:
    cluster_id = kafka_env["CLUSTER_ID"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_app_services_reach_kafka_and_clickhouse_by_service_name(
    services: dict[str, Any], kafka_env: dict[str, str]
) -> None:
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    container_addresses = {f"{h}:{p}" for h, p in advertised.values() if h == "kafka"}
    ch_ports = {int(p.split(":")[-1]) for p in services["clickhouse"]["ports"]}
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["TICKSCAN_KAFKA__BOOTSTRAP"] in container_addresses, name
        dsn = urlsplit(env["TICKSCAN_CLICKHOUSE__DSN"])
        assert dsn.scheme == "http"
        assert dsn.hostname == "clickhouse", name
        assert dsn.port in ch_ports and dsn.port == 8123
        assert dsn.username == services["clickhouse"]["environment"]["CLICKHOUSE_USER"]


def test_clickhouse_has_storage_and_file_limits(services: dict[str, Any]) -> None:
    clickhouse = services["clickhouse"]
    assert any(v.endswith(":/var/lib/clickhouse") for v in clickhouse["volumes"])
    assert clickhouse["ulimits"]["nofile"]["soft"] >= 262144


def test_app_images_build_from_our_dockerfile(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        build = services[name]["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), dockerfile
        text = dockerfile.read_text()
        assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
        # Every path the Dockerfile copies exists in the build context (a COPY --from
        # copies from an earlier build stage, not from the context).
        for source in re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", text, re.MULTILINE):
            for item in source.split():
                assert (context / item).exists(), f"COPY {item}: missing"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, source


def test_every_app_service_runs_a_real_tickscan_command_with_real_options(
    services: dict[str, Any],
) -> None:
    from typer.main import get_command

    from tickscan.cli import app

    cli = get_command(app)
    for name in APP_SERVICES:
        command = services[name]["command"]
        sub = cli.commands.get(command[0])  # type: ignore[attr-defined]
        assert sub is not None, f"{name}: no tickscan command {command[0]!r}"
        known = {opt for param in sub.params for opt in param.opts}
        for word in command[1:]:
            if word.startswith("--"):
                assert word in known, f"{name}: {command[0]} has no option {word}"


def test_the_api_listens_on_every_interface_on_its_published_port(
    services: dict[str, Any],
) -> None:
    api = services["api"]
    assert api["environment"]["TICKSCAN_API__HOST"] == "0.0.0.0"
    port = str(api["environment"]["TICKSCAN_API__PORT"])
    assert f"{port}:{port}" in api["ports"]
    assert f"127.0.0.1:{port}/api/v1/health" in " ".join(api["healthcheck"]["test"])


def test_the_flows_keep_their_recovery_state_on_volumes(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    for name in ("candles", "signals"):
        command = services[name]["command"]
        recovery = command[command.index("--recovery-dir") + 1]
        mounts = [m.split(":") for m in services[name]["volumes"]]
        assert any(
            recovery.startswith(target) and volume in compose["volumes"]
            for volume, target in mounts
        ), name


def test_the_paper_engine_keeps_its_journal_on_a_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    # The journal (<data dir>/paper-events.journal) holds committed events ClickHouse may
    # not have yet: it must outlive the container.
    data_dir = "/app/data"
    mounts = [m.split(":") for m in services["paper"]["volumes"]]
    assert any(target == data_dir and volume in compose["volumes"] for volume, target in mounts)

"""End to end: a ``bridge run`` process takes each setting from the highest source that sets it.

The README's order, highest first: environment, secret files in ``BRIDGE_SECRETS_DIR``, the YAML
file in ``BRIDGE_CONFIG_FILE``, the built-in defaults. Each source is built so that a different
one wins for a different setting, and every winner is seen from outside the process: which
simulator user logs in, which topics the events land on, which health port answers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from bridge.embedded_broker import EmbeddedBroker, free_port
from bridge.simulator import Simulator, SimulatorConfig
from tests.conftest import CONSUMER_GROUP_FAST, Reader, bridge_cli

pytestmark = pytest.mark.e2e

YAML_USER, YAML_PASSWORD = "agent.one", "yaml-user-password"
SECRET_USER, SECRET_USER_PASSWORD = "agent.two", "secret-user-password"

# Where each source sets a topic name, and which name must win.
ENV_STATUS, YAML_STATUS = "env.status.v1", "yaml.status.v1"
YAML_ALERTING = "yaml.alerting.v1"
SECRET_HISTORY, YAML_HISTORY = "secret.history.v1", "yaml.history.v1"
DEFAULT_ASSISTANCE = "icws.assistance.requests.v1"  # README settings table: the default


def yaml_config(sim: Simulator, broker: EmbeddedBroker, health_port: int) -> dict[str, Any]:
    """The YAML file: a full, fast configuration; higher sources override five of its values."""
    return {
        "icws": {
            "servers": [sim.url],
            "username": YAML_USER,
            "password": YAML_PASSWORD,
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.5,
            "request_timeout_seconds": 3,
            "shutdown_timeout_seconds": 2,
        },
        "kafka": {
            "bootstrap_servers": [broker.bootstrap],
            "enable_idempotence": False,
            **CONSUMER_GROUP_FAST,
        },
        "topics": {
            "partitions": 1,
            "status_messages": YAML_STATUS,
            "alerting": YAML_ALERTING,
            "history": YAML_HISTORY,
        },
        "commands": {"enabled": False},
        "health": {"host": "127.0.0.1", "port": health_port},
        "log": {"level": "WARNING"},
    }


def sources(
    tmp_path: Path, sim: Simulator, broker: EmbeddedBroker, yaml_port: int, env_port: int
) -> dict[str, str]:
    """Write the YAML file and the secrets directory; return the process environment."""
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump(yaml_config(sim, broker, yaml_port)))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    # Secret files beat YAML: the user and the history topic; the env beats the password.
    (secrets / "icws__username").write_text(SECRET_USER + "\n")
    (secrets / "icws__password").write_text("secret-file-password-that-env-overrides\n")
    (secrets / "topics__history").write_text(SECRET_HISTORY + "\n")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return {
        **inherited,
        "BRIDGE_CONFIG_FILE": str(config),
        "BRIDGE_SECRETS_DIR": str(secrets),
        "BRIDGE_ICWS__PASSWORD": SECRET_USER_PASSWORD,
        "BRIDGE_TOPICS__STATUS_MESSAGES": ENV_STATUS,
        "BRIDGE_HEALTH__PORT": str(env_port),
    }


@contextlib.asynccontextmanager
async def two_user_simulator() -> AsyncIterator[Simulator]:
    """A simulator knowing both users, each with something to report."""
    sim = Simulator(
        SimulatorConfig(
            users={YAML_USER: YAML_PASSWORD, SECRET_USER: SECRET_USER_PASSWORD},
            sse_keepalive_seconds=0.5,
        )
    )
    await sim.start(host="127.0.0.1", port=0)
    try:
        sim.world.seed_default_catalogue()
        for number, user in enumerate((YAML_USER, SECRET_USER)):
            sim.world.start_alerting(user, f"70{number}")
            sim.world.add_history(user, f"80{number}")
            sim.world.create_assistance(user, f"70{number}", f"help {user}")
        yield sim
    finally:
        await sim.stop()


async def livez_status(port: int) -> int | None:
    """The status of GET /livez on a loopback port, or None when nothing listens there."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/livez") as answer,
        ):
            return answer.status
    except aiohttp.ClientConnectionError:
        return None


async def cluster_topics(broker: EmbeddedBroker) -> set[str]:
    """Every topic the broker has."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await consumer.stop()


async def test_each_setting_comes_from_its_highest_source(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Env beats secret files, secret files beat YAML, YAML beats defaults, setting by setting."""
    yaml_port, env_port = free_port(), free_port()
    winners = [ENV_STATUS, YAML_ALERTING, SECRET_HISTORY, DEFAULT_ASSISTANCE]
    async with two_user_simulator() as sim:
        env = sources(tmp_path, sim, broker, yaml_port, env_port)
        async with (
            bridge_cli("run", env=env) as process,
            Reader(broker.bootstrap, winners) as kafka,
        ):
            await kafka.wait_for(
                lambda _: all(kafka.events(t) for t in winners) or process.returncode is not None,
                60,
            )
            assert process.returncode is None, "bridge run exited"
            users = {session.user for session in sim.sessions.values()}
            env_answer, yaml_answer = await livez_status(env_port), await livez_status(yaml_port)
            topics = await cluster_topics(broker)
    # Secret file over YAML (username), env over secret file (password, else no login at all).
    assert users == {SECRET_USER}
    assert [e["subject"] for e in kafka.events(YAML_ALERTING)] == ["701"]
    assert [e["subject"] for e in kafka.events(SECRET_HISTORY)] == ["801"]
    # Env over YAML (status topic, health port); the losers were never used.
    assert {YAML_STATUS, YAML_HISTORY, "icws.status.messages.v1"}.isdisjoint(topics)
    assert (env_answer, yaml_answer) == (200, None)

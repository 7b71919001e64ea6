"""``bridge schemas``: write, check or print the event schemas and the AsyncAPI document.

The committed files in ``bridge/schemas/`` are generated with the default settings; a test runs
the check so they never differ from the code. ``--topics DIR`` writes one record schema per
topic (``<topic>.json``, for the configured topic names) for a broker that validates what is
produced: Tansu run in DIR with ``--schema-registry file://./`` (see
:mod:`bridge.core.topic_schemas` and :mod:`bridge.embedded_broker`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bridge import __version__
from bridge.app import command_topics, contract_from
from bridge.core import asyncapi, schemas, topic_schemas
from bridge.errors import ConfigError
from bridge.settings import EventSettings, Settings, TopicSettings
from bridge.settings_base import describe_validation_error

SCHEMA_DIR = Path(__file__).parent / "schemas"
ASYNCAPI = "asyncapi.json"


def generated() -> dict[str, str]:
    """Every schema file's name and exact text, from the code and the default settings."""
    topics = TopicSettings()
    contract = contract_from(EventSettings(), topics)
    files: dict[str, Any] = dict(schemas.event_schemas(contract))
    files |= schemas.command_schemas(contract)
    files[ASYNCAPI] = asyncapi.asyncapi(contract, __version__, command_topics(topics))
    return _texts(files)


def topic_files(settings: Settings) -> dict[str, str]:
    """Every topic's record schema (``<topic>.json``) for the topic names of ``settings``."""
    contract = contract_from(settings.events, settings.topics)
    return _texts(topic_schemas.topic_schemas(contract, command_topics(settings.topics)))


def configured() -> Settings:
    """The configured settings (environment, secret files, YAML); no credentials needed."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def _texts(files: dict[str, Any]) -> dict[str, str]:
    return {
        name: json.dumps(value, indent=2, sort_keys=False) + "\n" for name, value in files.items()
    }


def differences(directory: Path) -> list[str]:
    """Files in ``directory`` that are missing, stale or not generated any more."""
    wanted = generated()
    present = {p.name for p in directory.glob("*.json")}
    problems = [f"missing: {n}" for n in sorted(wanted.keys() - present)]
    problems += [f"not generated: {n}" for n in sorted(present - wanted.keys())]
    problems += [
        f"stale: {n}"
        for n in sorted(wanted.keys() & present)
        if (directory / n).read_text() != wanted[n]
    ]
    return problems


def write(directory: Path, files: dict[str, str] | None = None) -> None:
    """Replace every ``*.json`` in ``directory`` with ``files`` (default: the event schemas)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        stale.unlink()
    for name, text in (generated() if files is None else files).items():
        (directory / name).write_text(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="print one file, e.g. asyncapi.json")
    parser.add_argument("--out", type=Path, help="write every file into this directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if bridge/schemas/ differs from the code"
    )
    parser.add_argument(
        "--topics",
        type=Path,
        metavar="DIR",
        help="write one record schema per topic (<topic>.json, configured topic names) into DIR, "
        "for a broker that validates records (Tansu run in DIR with --schema-registry file://./)",
    )


async def run(args: argparse.Namespace, _stop: asyncio.Event) -> None:
    """Print, write or check the schema files."""
    if args.check:
        problems = differences(SCHEMA_DIR)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            hint = (
                f"{SCHEMA_DIR} differs from the code; regenerate: bridge schemas --out {SCHEMA_DIR}"
            )
            print(hint, file=sys.stderr)
            raise SystemExit(1)
        return
    if args.out:
        write(args.out)
        return
    if args.topics:
        write(args.topics, topic_files(configured()))
        return
    files = generated()
    if args.name:
        if args.name not in files:
            raise SystemExit(f"no schema named {args.name}; one of: {', '.join(sorted(files))}")
        print(files[args.name], end="")
        return
    print("\n".join(sorted(files)))

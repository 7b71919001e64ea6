"""``bridge schemas``: write, check or print the event schemas and the AsyncAPI document.

The committed files in ``bridge/schemas/`` are generated with the default settings; a test runs
the check so they never differ from the code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.app import command_topics, contract_from
from bridge.core import schemas
from bridge.settings import EventSettings, TopicSettings

SCHEMA_DIR = Path(__file__).parent / "schemas"
ASYNCAPI = "asyncapi.json"


def generated() -> dict[str, str]:
    """Every schema file's name and exact text, from the code and the default settings."""
    topics = TopicSettings()
    contract = contract_from(EventSettings(), topics)
    files: dict[str, Any] = dict(schemas.event_schemas(contract))
    files |= schemas.command_schemas(contract)
    files[ASYNCAPI] = schemas.asyncapi(contract, __version__, command_topics(topics))
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


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        stale.unlink()
    for name, text in generated().items():
        (directory / name).write_text(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="print one file, e.g. asyncapi.json")
    parser.add_argument("--out", type=Path, help="write every file into this directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if bridge/schemas/ differs from the code"
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
    files = generated()
    if args.name:
        if args.name not in files:
            raise SystemExit(f"no schema named {args.name}; one of: {', '.join(sorted(files))}")
        print(files[args.name], end="")
        return
    print("\n".join(sorted(files)))

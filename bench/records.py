"""Byte-identical records: capture one burst's SSE bytes, replay them offline, compare two trees.

``python -m bench.records capture CHUNKS`` runs one own-work burst (``--count`` messages, a
simulator, no Kafka) and writes every chunk each SSE decoder was fed, per stream, as JSON lines.
``python -m bench.records replay CHUNKS OUT`` runs those chunks offline through the tree on
``PYTHONPATH``: the SSE decoder, ``messages.parse``, the core and the pump (one account, the
catalogue's, a fixed clock), and writes every record the pump handed its publisher (topic, key,
value, headers, label, in order) as JSON lines, printing their count and SHA-256. Replaying the
same chunks with two trees and comparing the outputs (``cmp``) proves their records identical.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.core import messages
from bridge.core.events import Record
from bridge.core.sse import SseDecoder

READ_AT = 1_764_480_000.25  # the fixed clock: every batch read at this moment


def capture(count: int, out: Path) -> None:
    """One own-work burst of ``count`` messages; every decoder's chunks to ``out``."""
    from bench import procs, throughput

    streams: dict[int, list[bytes]] = {}
    feed = SseDecoder.feed

    def noting(self: SseDecoder, chunk: bytes) -> list[str]:
        streams.setdefault(id(self), []).append(bytes(chunk))
        return feed(self, chunk)

    SseDecoder.feed = noting  # type: ignore[method-assign]
    procs.pin_self()
    asyncio.run(throughput.own_work(count, 1, out.with_suffix(".log")))
    with out.open("w", encoding="utf-8") as stream:
        for chunks in streams.values():
            stream.write(json.dumps([base64.b64encode(c).decode() for c in chunks]) + "\n")


class _Keeping:
    """A publisher that keeps what it is handed."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def put(self, records: Sequence[Record], read_at: float) -> None:
        self.records.extend(records)


def _text(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


async def _replay(streams: list[str]) -> list[Record]:
    from bench.simproc import USER
    from bridge import metrics
    from bridge.app import contract_from
    from bridge.core.state import new_states
    from bridge.events.pump import Pump
    from bridge.icws.transports import _decode
    from bridge.settings import EventSettings, TopicSettings

    contract = contract_from(EventSettings(), TopicSettings())
    publisher = _Keeping()
    pump = Pump(
        contract,
        new_states(),
        publisher,  # type: ignore[arg-type]
        metrics.create(),
        user=USER,
        catalogue=True,
        clock=lambda: READ_AT,
    )
    for line in streams:
        decoder = SseDecoder()
        for chunk in json.loads(line):
            batch = [_decode(data) for data in decoder.feed(base64.b64decode(chunk))]
            if batch:
                await pump.deliver([messages.parse(raw) for raw in batch], READ_AT)
    return publisher.records


def replay(chunks: Path, out: Path) -> None:
    """Replay ``chunks`` with this tree; its records to ``out``, their count and digest printed."""
    records = asyncio.run(_replay(chunks.read_text(encoding="utf-8").splitlines()))
    digest = hashlib.sha256()
    with out.open("w", encoding="utf-8") as stream:
        for r in records:
            row: list[Any] = [r.topic, _text(r.key), _text(r.value), r.label]
            row.append([[name, _text(value)] for name, value in r.headers])
            line = json.dumps(row) + "\n"
            digest.update(line.encode())
            stream.write(line)
    print(f"{len(records)} records, sha256 {digest.hexdigest()}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.records", description=__doc__)
    parser.add_argument("mode", choices=("capture", "replay"))
    parser.add_argument("chunks", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    if args.mode == "capture":
        capture(args.count, args.chunks)
    else:
        replay(args.chunks, args.out or args.chunks.with_suffix(".records"))


if __name__ == "__main__":
    main()

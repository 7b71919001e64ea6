"""/schemas/ over real HTTP: the package's schema files, byte for byte, and nothing else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from bridge import health, metrics
from bridge.app import contract_from
from bridge.core import commands, schemas
from bridge.core.events import EVENT_NAMES
from bridge.settings import EventSettings, TopicSettings

SHIPPED = Path(__file__).resolve().parents[2] / "bridge" / "schemas"


def shipped_files() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in SHIPPED.glob("*.json")}


@pytest.fixture(name="client")
async def _client() -> AsyncIterator[TestClient]:
    app = health.make_app(metrics.create(), dict, list)
    async with TestClient(TestServer(app)) as client:
        yield client


async def fetch(client: TestClient, path: str) -> tuple[int, str, bytes]:
    response = await client.get(URL(path, encoded=True))
    return response.status, response.content_type, await response.read()


class TestIndex:
    """/schemas/ lists what can be fetched."""

    @pytest.mark.parametrize("path", ["/schemas/", "/schemas"])
    async def test_index_lists_every_shipped_file(self, client: TestClient, path: str) -> None:
        """The index names asyncapi.json and every other shipped .json file, sorted."""
        status, content_type, body = await fetch(client, path)
        names = sorted(shipped_files())
        assert (status, content_type) == (200, "application/json")
        assert json.loads(body) == {
            "asyncapi": "asyncapi.json",
            "schemas": [n for n in names if n != "asyncapi.json"],
        }


class TestFiles:
    """Each file as shipped, with the media type tools expect."""

    @pytest.mark.parametrize("name", sorted(shipped_files()))
    async def test_each_file_is_served_as_shipped(self, client: TestClient, name: str) -> None:
        """Byte-identical to bridge/schemas/<name>; schema+json, or json for the AsyncAPI file."""
        status, content_type, body = await fetch(client, f"/schemas/{name}")
        expected_type = "application/json" if name == "asyncapi.json" else "application/schema+json"
        assert (status, content_type, body) == (200, expected_type, (SHIPPED / name).read_bytes())

    async def test_default_dataschema_urls_are_served_paths(self, client: TestClient) -> None:
        """With default settings, every event type's dataschema path answers 200 with its schema."""
        contract = contract_from(EventSettings(), TopicSettings())
        names = [*EVENT_NAMES.values(), *schemas.LIFECYCLE_DATA, commands.RESULT_NAME]
        for name in names:
            url = urlsplit(contract.schema_of(name))
            assert (url.scheme, url.netloc) == ("http", "localhost:8080")
            status, _, body = await fetch(client, url.path)
            assert status == 200, url.path
            assert json.loads(body)["title"] == contract.type_of(name)


class TestRefusals:
    """Unknown names and anything that looks like a path outside the set answer 404."""

    @pytest.mark.parametrize(
        "path",
        [
            "/schemas/nothing.v1.json",
            "/schemas/asyncapi.yaml",
            "/schemas/..%2Fhealth.py",
            "/schemas/%2e%2e%2f%2e%2e%2fpyproject.toml",
            "/schemas/../bridge/health.py",
            "/schemas/sub/asyncapi.json",
            "/schemas/%2Fetc%2Fpasswd",
        ],
    )
    async def test_unknown_or_traversing_names_are_404(self, client: TestClient, path: str) -> None:
        """Nothing outside the shipped files is reachable, however the name is spelled."""
        status, _, body = await fetch(client, path)
        assert status == 404
        assert b"root:" not in body
        assert b"[project]" not in body

    async def test_serves_exactly_the_files_it_was_given(self) -> None:
        """The set is fixed when the app is made: a name absent from it is 404 even if shipped."""
        app = health.make_app(metrics.create(), dict, list, {"only.v1.json": b"{}"})
        async with TestClient(TestServer(app)) as client:
            assert await fetch(client, "/schemas/only.v1.json") == (
                200,
                "application/schema+json",
                b"{}",
            )
            assert (await fetch(client, "/schemas/asyncapi.json"))[0] == 404
            index = json.loads((await fetch(client, "/schemas/"))[2])
            assert index == {"asyncapi": None, "schemas": ["only.v1.json"]}

"""Where to log in: the URL of an announced alternate host, and the order hosts are tried in.

A server names alternates in ``alternateHostList`` (a 201 or a 503, docs/icws-protocol.md §3.3);
behind a web proxy (§10) an alternate is another IC server behind the same proxy.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def host_url(base: str, host: str) -> str:
    """The URL of an alternate host a server at ``base`` named (§3.3, §10).

    A direct server (no path) gives the alternate's host with the base's scheme and port. Behind
    a web proxy (``https://proxy/api/<icserver>``) the alternate names another IC server, so it
    replaces the last path segment and the proxy's address stays.
    """
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if path:
        parent = path.rsplit("/", 1)[0]
        return urlunsplit((parts.scheme, parts.netloc, f"{parent}/{quote(host, safe='')}", "", ""))
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{host}{port}", "", "", ""))


def rotation(configured: list[str], announced: list[str], current: str | None) -> list[str]:
    """Hosts to try in order: the current one first, then configured, then announced; no repeats.

    ``announced`` are full URLs already built with :func:`host_url`.
    """
    order = ([current] if current else []) + configured + announced
    return list(dict.fromkeys(url.rstrip("/") for url in order))

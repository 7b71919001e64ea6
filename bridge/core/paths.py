"""Values in ICWS URL paths, percent-encoded as the ICWS SDK encodes them (``encodeURIComponent``).

Ids are opaque strings (docs/icws-protocol.md §4.4, §10): an assistance id may hold braces, ``|``,
``:``, spaces or slashes. Encoded, every id is exactly one path segment, whatever it holds.
"""

from __future__ import annotations

from urllib.parse import quote

# encodeURIComponent leaves these unencoded; every other character is its UTF-8 bytes as %XX.
URI_COMPONENT_SAFE = "-_.!~*'()"


def segment(value: str) -> str:
    """One path value (a session or assistance id) encoded as encodeURIComponent does."""
    return quote(value, safe=URI_COMPONENT_SAFE)


def session_root(session_id: str) -> str:
    """``/icws/{sessionId}``, the root of every call on a session."""
    return f"/icws/{segment(session_id)}"

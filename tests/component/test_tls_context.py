"""One TLS context shared by every account's ICWS client (a CA store each would cost GBs)."""

from __future__ import annotations

from pathlib import Path

import trustme

from bridge.icws.client import tls_context
from bridge.settings import IcwsSettings


def settings(**values: object) -> IcwsSettings:
    return IcwsSettings.model_validate({"username": "u", "password": "p", **values})


def test_accounts_share_one_context() -> None:
    """Two accounts' settings with the same verification and CA file get the very same context."""
    first, second = tls_context(settings()), tls_context(settings(username="other"))
    assert first is second
    assert first is not False


def test_a_ca_file_gets_its_own_context(tmp_path: Path) -> None:
    """An extra CA file makes a different context (which trusts it); verification off is False."""
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    with_ca = tls_context(settings(ca_file=str(ca)))
    assert with_ca is not tls_context(settings())
    assert with_ca is tls_context(settings(ca_file=str(ca)))
    assert tls_context(settings(verify_tls=False)) is False

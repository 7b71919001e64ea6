"""The accounts directory judged as values: one file per ICWS user; bad files reported."""

from __future__ import annotations

import pytest

from bridge.core.accounts import Account, Secret, accounts_from, changes


def account(user: str, password: str) -> Account:
    return Account(user, Secret(password))


class TestReading:
    def test_each_file_is_an_account(self) -> None:
        """The file name is the user id and the content its password."""
        read = accounts_from([("agent.one", b"s3cret"), ("agent.two", b"other")])
        assert read.accounts == {
            "agent.one": account("agent.one", "s3cret"),
            "agent.two": account("agent.two", "other"),
        }
        assert read.problems == ()

    @pytest.mark.parametrize(
        ("content", "password"),
        [
            (b"pw\n", "pw"),
            (b"pw\r\n", "pw"),
            (b"pw\n\n", "pw\n"),
            (b" pw ", " pw "),
            ("pässwörd".encode(), "pässwörd"),
        ],
    )
    def test_one_trailing_newline_is_not_part_of_the_password(
        self, content: bytes, password: str
    ) -> None:
        """`echo` and editors add one newline; everything else, spaces included, is the password."""
        assert accounts_from([("u", content)]).accounts["u"].password.reveal() == password

    def test_kubernetes_mount_machinery_is_skipped_silently(self) -> None:
        """A mounted Secret's `..data` and timestamped directories are not accounts nor problems."""
        read = accounts_from([("..data", b"x"), ("..2026_11_30_02_00_00.1", b"x"), ("u", b"p")])
        assert list(read.accounts) == ["u"]
        assert read.problems == ()

    @pytest.mark.parametrize(
        ("name", "content", "reason"),
        [
            ("empty", b"", "empty password"),
            ("newline-only", b"\n", "empty password"),
            ("binary", b"\xff\xfe", "the password is not UTF-8 text"),
            ("bell\x07", b"pw", "not a user id ICWS can accept"),
            ("   ", b"pw", "not a user id ICWS can accept"),
            ("x" * 257, b"pw", "user id longer than 256 characters"),
        ],
    )
    def test_bad_files_are_reported_and_skipped(
        self, name: str, content: bytes, reason: str
    ) -> None:
        """A bad file is a problem naming it; the good ones next to it are still accounts."""
        read = accounts_from([(name, content), ("good", b"pw")])
        assert list(read.accounts) == ["good"]
        assert len(read.problems) == 1
        assert read.problems[0].reason == reason

    def test_an_unreadable_file_is_reported(self) -> None:
        """A file that could not be read is reported with the error, not the content."""
        read = accounts_from([("locked", PermissionError(13, "Permission denied")), ("u", b"p")])
        assert list(read.accounts) == ["u"]
        assert read.problems[0].name == "locked"
        assert "PermissionError" in read.problems[0].reason

    def test_a_password_never_shows(self) -> None:
        """Neither repr nor str of an account or its secret contains the password."""
        acc = accounts_from([("agent.one", b"hunter2")]).accounts["agent.one"]
        assert "hunter2" not in repr(acc)
        assert "hunter2" not in str(acc.password)


class TestChanges:
    def test_added_removed_and_new_passwords(self) -> None:
        """A new file starts a session, a removed one stops it, a new password logs in again."""
        before = {"a": account("a", "1"), "b": account("b", "1"), "c": account("c", "1")}
        after = {"b": account("b", "1"), "c": account("c", "2"), "d": account("d", "1")}
        found = changes(before, after)
        assert (found.added, found.removed, found.changed) == (("d",), ("a",), ("c",))

    def test_the_same_reading_changes_nothing(self) -> None:
        """Reading the same directory again asks nothing of the fleet."""
        same = {"a": account("a", "1")}
        found = changes(same, dict(same))
        assert (found.added, found.removed, found.changed) == ((), (), ())

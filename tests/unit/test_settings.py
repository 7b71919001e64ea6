"""Settings come from env, secret files and YAML, in that order, and fail naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import AnyHttpUrl, SecretStr

from bridge.errors import ConfigError
from bridge.settings import env_name, load_settings
from bridge.settings_docs import example_env, setting_rows

ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True, name="clean_env")
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BRIDGE_* variable from the outside, no YAML file unless a test writes one."""
    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # so the default config/bridge.yaml is not found either
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(tmp_path / "absent.yaml"))


@pytest.fixture(name="credentials")
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two settings without a default, given by env."""
    monkeypatch.setenv("BRIDGE_ICWS__USERNAME", "agent.one")
    monkeypatch.setenv("BRIDGE_ICWS__PASSWORD", "hunter2")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


class TestEnvironment:
    """``BRIDGE_`` prefix, ``__`` nesting, comma lists."""

    def test_nested_values(self, monkeypatch: pytest.MonkeyPatch, credentials: None) -> None:
        """Nested groups are reached with ``__`` and values converted to their types."""
        monkeypatch.setenv("BRIDGE_ICWS__POLL_INTERVAL_SECONDS", "2.5")
        monkeypatch.setenv("BRIDGE_ICWS__TRANSPORT", "poll")
        monkeypatch.setenv("BRIDGE_SUBSCRIPTIONS__HISTORY__NUMBER_OF_MESSAGES", "50")
        monkeypatch.setenv("BRIDGE_SUBSCRIPTIONS__ASSISTANCE__ENABLED", "false")
        settings = load_settings()
        assert settings.icws.username == "agent.one"
        assert settings.icws.poll_interval_seconds == 2.5
        assert settings.icws.transport == "poll"
        assert settings.subscriptions.history.number_of_messages == 50
        assert settings.subscriptions.assistance.enabled is False

    @pytest.mark.parametrize(
        "servers",
        [
            "https://a:8019,https://b:8019",
            " https://a:8019 , https://b:8019 ,",
            '["https://a:8019", "https://b:8019"]',
        ],
        ids=["commas", "spaces-and-trailing-comma", "json"],
    )
    def test_icws_servers_as_a_comma_list(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None, servers: str
    ) -> None:
        """A comma-separated (or JSON) list of URLs, in order."""
        monkeypatch.setenv("BRIDGE_ICWS__SERVERS", servers)
        assert load_settings().icws.servers == [
            AnyHttpUrl("https://a:8019"),
            AnyHttpUrl("https://b:8019"),
        ]

    def test_icws_servers_may_carry_a_proxy_base_path(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """``https://proxy/api/<icserver>`` is a base URL; ICWS paths are appended to it."""
        monkeypatch.setenv("BRIDGE_ICWS__SERVERS", "https://proxy/api/ic1,http://ic2:8018")
        servers = [str(url).rstrip("/") for url in load_settings().icws.servers]
        assert servers == ["https://proxy/api/ic1", "http://ic2:8018"]

    def test_kafka_bootstrap_servers_as_a_comma_list(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """Bootstrap servers split on commas."""
        monkeypatch.setenv("BRIDGE_KAFKA__BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
        assert load_settings().kafka.bootstrap_servers == ["kafka-0:9092", "kafka-1:9092"]

    def test_defaults_without_any_source(self, credentials: None) -> None:
        """Unset settings take the defaults written in the code."""
        settings = load_settings()
        assert settings.icws.servers == [AnyHttpUrl("https://icserver:8019")]
        assert settings.kafka.bootstrap_servers == ["localhost:9092"]
        assert settings.topics.alerting == "icws.interaction.alerting.v1"

    def test_env_name_of_a_dotted_setting(self) -> None:
        """``icws.poll_interval_seconds`` is ``BRIDGE_ICWS__POLL_INTERVAL_SECONDS``."""
        assert env_name("icws.poll_interval_seconds") == "BRIDGE_ICWS__POLL_INTERVAL_SECONDS"


class TestYamlFile:
    """A YAML file (``BRIDGE_CONFIG_FILE``) gives defaults that env and secrets override."""

    def test_values_from_the_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credentials: None
    ) -> None:
        """Nested YAML maps onto the groups."""
        path = write(
            tmp_path / "bridge.yaml",
            'icws:\n  servers: ["https://ic-a:8019", "https://ic-b:8019"]\n'
            "  request_timeout_seconds: 7\n"
            'kafka:\n  bootstrap_servers: ["k:9092"]\n'
            "topics:\n  lifecycle: custom.lifecycle\n",
        )
        monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))
        settings = load_settings()
        assert settings.icws.servers == [
            AnyHttpUrl("https://ic-a:8019"),
            AnyHttpUrl("https://ic-b:8019"),
        ]
        assert settings.icws.request_timeout_seconds == 7
        assert settings.kafka.bootstrap_servers == ["k:9092"]
        assert settings.topics.lifecycle == "custom.lifecycle"

    def test_env_beats_the_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credentials: None
    ) -> None:
        """The same setting in both: the environment wins, the file's other values stay."""
        path = write(
            tmp_path / "bridge.yaml",
            "icws:\n  request_timeout_seconds: 7\n  language: de-de\n",
        )
        monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))
        monkeypatch.setenv("BRIDGE_ICWS__REQUEST_TIMEOUT_SECONDS", "9")
        settings = load_settings()
        assert (settings.icws.request_timeout_seconds, settings.icws.language) == (9, "de-de")

    def test_an_unknown_key_in_the_file_is_an_error(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credentials: None
    ) -> None:
        """A misspelt setting is not silently ignored."""
        path = write(tmp_path / "bridge.yaml", "icws:\n  request_timout_seconds: 7\n")
        monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert str(caught.value) == (
            "invalid settings: icws.request_timout_seconds "
            "(env BRIDGE_ICWS__REQUEST_TIMOUT_SECONDS): Extra inputs are not permitted"
        )


class TestSecretFiles:
    """Secrets may be files named like ``icws__password`` in ``BRIDGE_SECRETS_DIR``."""

    def test_the_password_from_a_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The file's content (without its trailing newline) is the password."""
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        write(secrets / "icws__password", "s3cret\n")
        monkeypatch.setenv("BRIDGE_SECRETS_DIR", str(secrets))
        monkeypatch.setenv("BRIDGE_ICWS__USERNAME", "agent.one")
        assert load_settings().icws.password.get_secret_value() == "s3cret"

    def test_env_beats_secret_files_which_beat_the_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Env over secrets over YAML, setting by setting."""
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        write(secrets / "icws__password", "from-secret")
        write(secrets / "icws__username", "secret-user")
        path = write(
            tmp_path / "bridge.yaml", "icws:\n  username: yaml-user\n  password: from-yaml\n"
        )
        monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))
        monkeypatch.setenv("BRIDGE_SECRETS_DIR", str(secrets))
        monkeypatch.setenv("BRIDGE_ICWS__USERNAME", "env-user")
        settings = load_settings()
        assert (settings.icws.username, settings.icws.password.get_secret_value()) == (
            "env-user",
            "from-secret",
        )


class TestErrors:
    """Bad or missing settings stop start-up with a ConfigError naming them, never their value."""

    def test_an_invalid_value_names_setting_and_env_variable(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """The message names the dotted setting and its variable, and not the value given."""
        monkeypatch.setenv("BRIDGE_ICWS__TRANSPORT", "hunter2-websocket")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        message = str(caught.value)
        assert message.startswith("invalid settings: icws.transport (env BRIDGE_ICWS__TRANSPORT): ")
        assert "hunter2-websocket" not in message

    def test_every_invalid_value_is_named(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """Two bad settings, one message naming both."""
        monkeypatch.setenv("BRIDGE_ICWS__POLL_INTERVAL_SECONDS", "-1")
        monkeypatch.setenv("BRIDGE_HEALTH__PORT", "99999")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        message = str(caught.value)
        assert "icws.poll_interval_seconds (env BRIDGE_ICWS__POLL_INTERVAL_SECONDS)" in message
        assert "health.port (env BRIDGE_HEALTH__PORT)" in message
        assert "99999" not in message

    def test_missing_credentials_are_named(self) -> None:
        """Username and password have no default: both are named with their variables."""
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert str(caught.value) == (
            "missing setting(s): icws.username (env BRIDGE_ICWS__USERNAME), "
            "icws.password (env BRIDGE_ICWS__PASSWORD)"
        )

    def test_a_missing_password_alone_is_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a username, only the password is missing."""
        monkeypatch.setenv("BRIDGE_ICWS__USERNAME", "agent.one")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert str(caught.value) == "missing setting(s): icws.password (env BRIDGE_ICWS__PASSWORD)"

    def test_an_accounts_directory_needs_no_username_or_password(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A fleet's accounts come from icws.accounts_dir: the one-account pair is not asked for."""
        monkeypatch.setenv("BRIDGE_ICWS__ACCOUNTS_DIR", str(tmp_path))
        settings = load_settings()
        assert settings.icws.accounts_dir == tmp_path
        assert settings.icws.username == ""

    def test_incomplete_sasl_is_an_error(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """SASL without mechanism, user and password is refused."""
        monkeypatch.setenv("BRIDGE_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
        with pytest.raises(ConfigError, match="SASL needs sasl_mechanism"):
            load_settings()

    def test_config_error_is_not_retriable(self) -> None:
        """Start-up stops: trying again cannot help."""
        assert ConfigError("x").retriable is False

    def test_a_malformed_group_value_is_a_config_error(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """``BRIDGE_ICWS={bad`` is reported like any other invalid setting."""
        monkeypatch.setenv("BRIDGE_ICWS", "{bad")
        with pytest.raises(ConfigError, match=r"BRIDGE_ICWS\b"):
            load_settings()

    def test_a_bad_list_item_names_the_list_variable(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """A bad URL in ``BRIDGE_ICWS__SERVERS`` names that variable, not an indexed one."""
        monkeypatch.setenv("BRIDGE_ICWS__SERVERS", "not-a-url")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert "(env BRIDGE_ICWS__SERVERS)" in str(caught.value)


class TestServerUrls:
    """A configured ICWS server is a base URL: a path is allowed, a query or ``/icws`` is not."""

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("https://proxy/api/ic1?user=x", "no query or fragment"),
            ("https://proxy/api/ic1#top", "no query or fragment"),
            ("https://ic1:8019/icws", "without /icws"),
            ("https://proxy/api/ic1/ICWS/", "without /icws"),
        ],
        ids=["query", "fragment", "icws", "icws-uppercase-slash"],
    )
    def test_a_url_that_is_not_a_base_is_named_not_shown(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None, url: str, reason: str
    ) -> None:
        """Start-up stops naming the setting and why, never echoing the URL given."""
        monkeypatch.setenv("BRIDGE_ICWS__SERVERS", f"https://ok:8019,{url}")
        with pytest.raises(ConfigError) as caught:
            load_settings()
        message = str(caught.value)
        assert message.startswith("invalid settings: icws.servers (env BRIDGE_ICWS__SERVERS): ")
        assert reason in message
        assert url not in message


class TestSecrets:
    """Secrets never show when settings are printed, logged or compared."""

    def test_passwords_are_hidden_in_repr_and_str(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """Neither the ICWS nor the Kafka password appears in repr or str of the settings."""
        monkeypatch.setenv("BRIDGE_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
        monkeypatch.setenv("BRIDGE_KAFKA__SASL_MECHANISM", "PLAIN")
        monkeypatch.setenv("BRIDGE_KAFKA__SASL_USERNAME", "bridge")
        monkeypatch.setenv("BRIDGE_KAFKA__SASL_PASSWORD", "kafka-pa55")
        settings = load_settings()
        for text in (repr(settings), str(settings), repr(settings.icws), str(settings.kafka)):
            assert "hunter2" not in text
            assert "kafka-pa55" not in text
        assert isinstance(settings.icws.password, SecretStr)
        assert str(settings.icws.password) == "**********"
        assert settings.kafka.sasl_password is not None
        assert settings.kafka.sasl_password.get_secret_value() == "kafka-pa55"

    def test_settings_are_frozen(self, credentials: None) -> None:
        """Built once and passed down: nobody can change them afterwards."""
        settings = load_settings()
        with pytest.raises(ValueError, match="frozen"):
            settings.icws.username = "other"  # type: ignore[misc]


class TestShippedFiles:
    """The files under ``config/`` stay in step with the code."""

    def test_example_env_is_generated_from_the_code(self) -> None:
        """``config/example.env`` is exactly what ``example_env()`` writes."""
        assert (ROOT / "config" / "example.env").read_text(encoding="utf-8") == example_env()

    def test_example_env_lists_every_setting(self) -> None:
        """Each leaf setting has its variable in the example."""
        text = example_env()
        for dotted, _, _ in setting_rows():
            assert f"# {env_name(dotted)}=" in text

    def test_bridge_yaml_loads_and_states_the_code_defaults(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """``config/bridge.yaml`` validates, and what it states agrees with the code's defaults."""
        from_code = load_settings()
        monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(ROOT / "config" / "bridge.yaml"))
        assert load_settings() == from_code

    def test_example_env_uncommented_gives_the_defaults(
        self, monkeypatch: pytest.MonkeyPatch, credentials: None
    ) -> None:
        """Every line of the example, uncommented, validates and changes nothing."""
        defaults = load_settings()
        for line in example_env().splitlines():
            name, sep, value = line.removeprefix("# ").partition("=")
            if (
                sep
                and name.startswith("BRIDGE_")
                and name
                not in (
                    "BRIDGE_CONFIG_FILE",
                    "BRIDGE_SECRETS_DIR",
                    "BRIDGE_ICWS__USERNAME",
                    "BRIDGE_ICWS__PASSWORD",
                )
            ):
                monkeypatch.setenv(name, value)
        assert load_settings() == defaults


class TestConsumerGroupDefaults:
    """The command consumer's shipped group timeouts suit a stock Kafka broker."""

    def test_session_timeout_is_one_a_stock_kafka_broker_accepts(self, credentials: None) -> None:
        """Within Kafka's default group.min/max.session.timeout.ms (6,000 / 1,800,000 ms)."""
        kafka = load_settings().kafka
        assert 6_000 <= kafka.consumer_session_timeout_ms <= 1_800_000

    def test_heartbeat_leaves_three_chances_per_session(self, credentials: None) -> None:
        """Heartbeat at most a third of the session timeout (Kafka's guidance)."""
        kafka = load_settings().kafka
        assert kafka.consumer_heartbeat_interval_ms * 3 <= kafka.consumer_session_timeout_ms

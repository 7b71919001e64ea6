"""structlog set-up: JSON lines in containers, readable lines on a terminal, stdlib routed through.

Every log line passes through ``redact_secrets`` last, so a password, CSRF token or cookie that
reached a log call by mistake is masked before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|cookie|csrf|authorization", re.IGNORECASE)
_SECRET_VALUES = re.compile(
    r"(?i)(icws_\d+=)[^;\s\"']+|(ININ-ICWS-CSRF-Token[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
)
REDACTED = "***"


def _mask(text: str) -> str:
    return _SECRET_VALUES.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask values under secret-looking keys and cookie or token text inside strings."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and value not in (None, ""):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = _mask(value)
    return event_dict


def configure(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger once, at start-up."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every reconnect attempt at ERROR; our own lines say it once and clearly.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A named logger; call at use, not at import, so configuration applies."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger

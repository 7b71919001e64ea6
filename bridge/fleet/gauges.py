"""The fleet's gauges: what its accounts' sessions know of themselves, counted at each scrape.

No session writes a single-value metric: with many accounts "the host", "the transport" or "the
last message" would be whichever account wrote last. Instead each session keeps its own
:class:`~bridge.icws.sink.Health` and ``last_message``, and these functions, registered once
with ``set_function``, count or compare the held accounts when Prometheus asks: accounts per
state, per transport, per subscription in place, per host (and its ICWS version), the newest
message of any account and the silence of the account heard from longest ago. With one account
each count is 1 or 0, as the metric always meant.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial

from bridge.fleet.accounts import AccountSource
from bridge.fleet.pipeline import AccountPipeline
from bridge.icws.sink import Health
from bridge.icws.subscriptions import subscription_bodies
from bridge.metrics import SESSION_STATES, TRANSPORTS, Metrics
from bridge.settings import SubscriptionSettings

Pipelines = Mapping[str, AccountPipeline]


def register(
    metrics: Metrics, pipelines: Pipelines, source: AccountSource, subs: SubscriptionSettings
) -> None:
    """Compute the fleet's gauges from ``pipelines`` (a live mapping) at each scrape."""
    for state in SESSION_STATES:
        metrics.accounts.labels(state=state).set_function(
            _counting(pipelines, partial(_in_state, state))
        )
    metrics.accounts_held.set_function(lambda: len(pipelines))
    metrics.accounts_configured.set_function(lambda: len(source.last.accounts.accounts))
    metrics.account_files_skipped.set_function(lambda: len(source.last.accounts.problems))
    for transport in TRANSPORTS:
        metrics.transport.labels(transport=transport).set_function(
            _counting(pipelines, partial(_reading_with, transport))
        )
    for name in subscription_bodies(subs):
        metrics.subscriptions.labels(subscription=name).set_function(
            _counting(pipelines, partial(_subscribed, name))
        )
    metrics.hosts.set_function(lambda: hosts(pipelines))
    metrics.last_message.set_function(lambda: newest(pipelines))
    metrics.message_age.set_function(lambda: age(pipelines))


def _counting(pipelines: Pipelines, test: Callable[[Health], bool]) -> Callable[[], int]:
    return lambda: sum(test(p.session.health) for p in pipelines.values())


def _in_state(state: str, health: Health) -> bool:
    return health.state == state


def _reading_with(transport: str, health: Health) -> bool:
    return health.transport == transport


def _subscribed(name: str, health: Health) -> bool:
    return name in health.active


def hosts(pipelines: Pipelines) -> Counter[tuple[str, ...]]:
    """Accounts per (host, ICWS version) of their last login; those never logged in are left out."""
    healths = [p.session.health for p in pipelines.values()]
    return Counter((h.host, h.icws_version) for h in healths if h.host)


def newest(pipelines: Pipelines) -> float:
    """Unix time of the newest message of any account (0 while none is held)."""
    return max((p.session.last_message for p in pipelines.values()), default=0.0)


def age(pipelines: Pipelines) -> float:
    """Seconds since the last message of the account that heard from ICWS longest ago."""
    now = time.time()
    return max((now - p.session.last_message for p in pipelines.values()), default=0.0)

"""The usage service's settings, from the environment; a bad value is refused by name.

| variable | default | what |
|---|---|---|
| `RELAIS_USAGE_TIMEZONE` | `Europe/Paris` | the time zone days, weeks and months are cut in |
| `RELAIS_USAGE_GRACE_HOURS` | `48` | how long after a month ends its events are still counted in it, before it closes |
| `RELAIS_USAGE_THRESHOLD` | `10` | cells counting fewer people or events are suppressed in reports (never below 5) |
| `RELAIS_USAGE_RESOURCES` | none | a YAML file: `{resource id: [CAS services and SAML platforms that serve it]}` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .rules.observations import services_to_resources
from .rules.periods import DEFAULT_TIMEZONE

MIN_THRESHOLD = 5


class UsageConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and what it holds."""


@dataclass(frozen=True)
class UsageSettings:
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    grace: timedelta = timedelta(hours=48)
    threshold: int = 10
    services: Mapping[str, str] = field(default_factory=dict)  # service or platform -> resource
    close_every_s: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UsageSettings:
        env = os.environ if env is None else env
        name = env.get("RELAIS_USAGE_TIMEZONE") or DEFAULT_TIMEZONE
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageConfigError(f"RELAIS_USAGE_TIMEZONE={name!r} is not a time zone (e.g. Europe/Paris, "
                                   "America/Cayenne, Indian/Reunion)") from None
        grace = _int(env, "RELAIS_USAGE_GRACE_HOURS", 48, minimum=0)
        threshold = _int(env, "RELAIS_USAGE_THRESHOLD", 10, minimum=MIN_THRESHOLD)
        return cls(zone=zone, grace=timedelta(hours=grace), threshold=threshold,
                   services=_resources(env.get("RELAIS_USAGE_RESOURCES")))


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageConfigError(f"{name}={text!r} is not a whole number") from None
    if value < minimum:
        raise UsageConfigError(f"{name}={value} is below its minimum, {minimum}")
    return value


def _resources(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageConfigError(f"RELAIS_USAGE_RESOURCES={path!r} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageConfigError(f"RELAIS_USAGE_RESOURCES={path!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, list) and
                                             all(isinstance(n, str) for n in v) for k, v in data.items()):
        raise UsageConfigError(f"RELAIS_USAGE_RESOURCES={path!r} must map each resource id to a list of CAS "
                               "service and SAML platform names")
    try:
        return services_to_resources(data)
    except ValueError as exc:
        raise UsageConfigError(f"RELAIS_USAGE_RESOURCES={path!r}: {exc}") from None

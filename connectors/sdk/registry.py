"""Connectors by name, so the command line can say ``--from webdav`` and ``--to caldav``.

Built-in connectors are listed here and imported only when asked for. A vendor's package
adds its own through the ``relais.connectors`` entry-point group::

    [project.entry-points."relais.connectors"]
    myent = "myent_relais.connector:CONNECTOR"   # a ConnectorInfo

A :class:`ConnectorInfo` says which verticals the connector handles and builds, from a
:class:`ConnectorConfig`, an exporter and/or importer per vertical.
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from .config import ConnectorConfig
from .errors import ConfigError
from .interfaces import Exporter, Importer

ENTRY_POINT_GROUP = "relais.connectors"

#: name -> "module:attribute" of a ConnectorInfo.
BUILTIN: dict[str, str] = {
    "webdav": "connectors.webdav:CONNECTOR",
    "caldav": "connectors.dav:CALDAV",
    "carddav": "connectors.dav:CARDDAV",
    "edifice": "connectors.edifice:CONNECTOR",
}


@dataclass(frozen=True)
class ConnectorInfo:
    name: str
    verticals: tuple[str, ...]
    summary: str
    exporter: Callable[[ConnectorConfig, str], Exporter] | None = None  # (config, vertical) -> Exporter
    importer: Callable[[ConnectorConfig, str], Importer] | None = None
    options: Mapping[str, str] | None = None  # option -> what it means, for --help and docs


_extra: dict[str, ConnectorInfo] = {}
_lock = threading.Lock()


def register(info: ConnectorInfo) -> None:
    """Register a connector at run time (tests, embedded use). A name is registered once."""
    with _lock:
        if info.name in _extra or info.name in BUILTIN:
            raise ConfigError(f"a connector named {info.name!r} is already registered")
        _extra[info.name] = info


def unregister(name: str) -> None:
    with _lock:
        _extra.pop(name, None)


def _load(target: str, name: str) -> ConnectorInfo:
    module, _, attr = target.partition(":")
    try:
        info = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"connector {name!r} ({target}) cannot be loaded: {exc}") from None
    if not isinstance(info, ConnectorInfo):
        raise ConfigError(f"connector {name!r}: {target} is not a ConnectorInfo")
    return info


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every connector name known: built-in, installed plugins, registered at run time."""
    return sorted(set(BUILTIN) | set(_plugins()) | set(_extra))


def get(name: str) -> ConnectorInfo:
    if name in _extra:
        return _extra[name]
    target = BUILTIN.get(name) or _plugins().get(name)
    if target is None:
        raise ConfigError(f"no connector named {name!r}; known: {', '.join(names())}")
    return _load(target, name)


def _config(config: ConnectorConfig | Mapping[str, Any], environ: Mapping[str, str] | None,
            name: str) -> ConnectorConfig:
    if isinstance(config, ConnectorConfig):
        return config
    return ConnectorConfig.from_mapping(config, environ=environ, where=f"configuration of connector {name!r}")


def _vertical(info: ConnectorInfo, vertical: str | None) -> str:
    if vertical is None:
        if len(info.verticals) != 1:
            raise ConfigError(f"connector {info.name!r} handles {', '.join(info.verticals)}: say which vertical")
        return info.verticals[0]
    if vertical not in info.verticals:
        raise ConfigError(f"connector {info.name!r} handles {', '.join(info.verticals)}, not {vertical!r}")
    return vertical


def open_exporter(name: str, config: ConnectorConfig | Mapping[str, Any], vertical: str | None = None, *,
                  environ: Mapping[str, str] | None = None) -> Exporter:
    """The exporter of connector ``name`` for ``vertical`` (optional when it has one)."""
    info = get(name)
    if info.exporter is None:
        raise ConfigError(f"connector {name!r} cannot export (it only imports)")
    return info.exporter(_config(config, environ, name), _vertical(info, vertical))


def open_importer(name: str, config: ConnectorConfig | Mapping[str, Any], vertical: str | None = None, *,
                  environ: Mapping[str, str] | None = None) -> Importer:
    info = get(name)
    if info.importer is None:
        raise ConfigError(f"connector {name!r} cannot import (it only exports)")
    return info.importer(_config(config, environ, name), _vertical(info, vertical))

"""The connectors a transfer talks to, by name and configuration (``--from webdav --config a.yaml``)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from connectors.sdk import ConfigError, ConnectorConfig, Exporter, Importer, registry
from connectors.sdk.registry import ConnectorInfo


@dataclass(frozen=True)
class Peer:
    """A source or target: a connector and its configuration, opened per vertical."""

    info: ConnectorInfo
    config: ConnectorConfig

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def verticals(self) -> tuple[str, ...]:
        return tuple(self.info.verticals)

    def exporter(self, vertical: str) -> Exporter:
        return registry.open_exporter(self.name, self.config, vertical)

    def importer(self, vertical: str) -> Importer:
        return registry.open_importer(self.name, self.config, vertical)


def default_config_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "connectors" / f"{name}.yaml"


def open_peer(name: str, config: Path | Mapping | ConnectorConfig | None = None, *, data_dir: Path | None = None,
              environ: Mapping[str, str] | None = None) -> Peer:
    """The connector ``name`` with its configuration: a file (YAML or JSON), a mapping, or, when
    none is given, ``<data_dir>/connectors/<name>.yaml``. :class:`ConfigError` says what is wrong."""
    info = registry.get(name)
    if isinstance(config, ConnectorConfig):
        return Peer(info, config)
    if isinstance(config, Mapping):
        return Peer(info, ConnectorConfig.from_mapping(config, environ=environ,
                                                       where=f"configuration of connector {name!r}"))
    if config is None:
        if data_dir is None:
            raise ConfigError(f"connector {name!r}: no configuration given")
        config = default_config_path(data_dir, name)
        if not config.is_file():
            raise ConfigError(f"connector {name!r}: no configuration given (--config FILE) and {config} does not exist")
    return Peer(info, ConnectorConfig.from_file(Path(config), environ=environ))

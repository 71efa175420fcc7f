"""The directory's nameko entrypoint: RPC queries and the outbox relay.

Thin on purpose: each method hands over to `Directory` (plain Python). Database
calls block, so they run in eventlet's thread pool and do not stall the hub
(shared/STACK_NOTES.md item 4).
"""

from __future__ import annotations

import logging

from eventlet import tpool
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy.exc import OperationalError

from relais.bus.outbox import OutboxRelay
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.config import Settings
from relais.db import make_engine, upgrade

from .api import Directory

log = logging.getLogger(__name__)


class Runtime(DependencyProvider):
    """One engine, facade and relay per service instance."""

    def setup(self):
        settings = Settings.from_env()
        engine = make_engine(settings.database_url)
        tpool.execute(upgrade, engine)
        self.directory = Directory(engine, settings.tenant)
        self.relay = OutboxRelay(engine, lambda: ConfirmedPublisher(settings.amqp_uri))

    def stop(self):
        self.relay.close()

    def get_dependency(self, worker_ctx):
        return self


class DirectoryService:
    name = "directory"
    runtime = Runtime()

    def _call(self, method: str, *args, **kwargs):
        return tpool.execute(getattr(self.runtime.directory, method), *args, **kwargs)

    @rpc
    def get_person(self, jointure):
        return self._call("get_person", jointure)

    @rpc
    def find_pupils(self, struct_rattach_id, uai):
        return self._call("find_pupils", struct_rattach_id, uai)

    @rpc
    def find_parents(self, pupil_struct_rattach_id, uai, last_name, first_name):
        return self._call("find_parents", pupil_struct_rattach_id, uai, last_name, first_name)

    @rpc
    def find_by_ine(self, ine):
        return self._call("find_by_ine", ine)

    @rpc
    def find_by_email(self, email):
        return self._call("find_by_email", email)

    @rpc
    def members(self, structure, class_code=None, group_code=None):
        return self._call("members", structure, class_code, group_code)

    @rpc
    def children(self, relative):
        return self._call("children", relative)

    @rpc
    def legal_guardians(self, pupil):
        return self._call("legal_guardians", pupil)

    @rpc
    def get_structure(self, key):
        return self._call("get_structure", key)

    @timer(interval=1)
    def relay_outbox(self):
        try:
            tpool.execute(self.runtime.relay.drain)
        except PublishError as exc:
            log.warning("outbox relay: %s; will retry", exc)
        except OperationalError as exc:  # e.g. SQLite busy during a long import
            log.info("outbox relay: database busy (%s); will retry", exc.orig)

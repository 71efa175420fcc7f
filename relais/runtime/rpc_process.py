"""The RPC process beside a service's main one: started, watched and stopped by the runner.

A service that answers RPC runs two processes: the main one (consumers, timers, relay, HTTP, the
ops endpoints; plain threads) and its RPC process (nameko under eventlet: `relais.runtime.rpc`),
which the main one starts with the command the composition root gives. eventlet's locks do not
work across OS threads, so it stays out of the main process.

- The RPC process inherits the environment, stderr and the migrated database.
- It exits when the main one is gone (killed), within a second; SIGTERM to the main process reaches
  it as SIGTERM, and the main process waits for it (`JOIN_S`, then kills it).
- If it ends on its own, the main process stops too, with exit status 1: a supervisor (compose,
  Kubernetes, systemd) restarts the pair; readiness (`rpc` in /readyz) says so meanwhile.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Sequence

from relais.ops.health import CheckFailed, consumed_check

log = logging.getLogger(__name__)

JOIN_S = 10.0


class RpcProcess:
    """The RPC process of `service`, run by `command`; `stop` (set when it ends) stops the main process."""

    def __init__(self, service: str, command: Sequence[str], amqp_uri: str, stop: threading.Event) -> None:
        self.service, self.stop_event = service, stop
        self.consumed = consumed_check(amqp_uri, f"rpc-{service}")
        self.stopping = False
        self.returncode: int | None = None
        self.child = subprocess.Popen(list(command), stdin=subprocess.DEVNULL)
        self.watcher = threading.Thread(target=self._watch, name=f"rpc-{service}-watch", daemon=True)
        self.watcher.start()

    def _watch(self) -> None:
        self.returncode = self.child.wait()
        if not self.stopping:
            log.error("%s's RPC process (pid %d) exited with status %d; stopping %s", self.service, self.child.pid,
                      self.returncode, self.service)
            self.stop_event.set()

    @property
    def failed(self) -> bool:
        """Whether it ended on its own (not told to)."""
        return self.returncode is not None and not self.stopping

    def check(self) -> str:
        """The readiness check `rpc`: the process is running, and its queue has a consumer (it, or another
        instance's)."""
        if self.child.poll() is not None:
            raise CheckFailed(f"the RPC process (pid {self.child.pid}) exited with status {self.child.returncode}")
        return f"RPC process pid {self.child.pid}; {self.consumed()}"

    def stop(self) -> None:
        self.stopping = True
        if self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=JOIN_S)
            except subprocess.TimeoutExpired:
                log.warning("%s's RPC process did not stop within %.0f s: killed", self.service, JOIN_S)
                self.child.kill()
                self.child.wait()
        self.watcher.join(timeout=JOIN_S)

"""A throw-away three-node RabbitMQ cluster on this machine, from the installed `rabbitmq-server`.

Each node gets its own name (`relais-<run>-<n>@localhost`), AMQP and distribution ports (free ones:
not the machine's broker's 5672/15672/25672), data, log and configuration files, all under one
temporary folder, and no plugin. The nodes share an Erlang cookie written in that folder, which is
their `$HOME` and that of the `rabbitmqctl` calls made here: the system broker's cookie
(/var/lib/rabbitmq/.erlang.cookie) is neither read nor touched, so the machine's own broker cannot
join this cluster by mistake. The scripts are run from /usr/lib/rabbitmq/bin, not the wrappers of
/usr/sbin (which switch to the `rabbitmq` user, dropping the environment): the nodes run as the user
running the tests.

`RabbitCluster.start()` starts the three nodes at once, waits for each, then joins nodes 2 and 3 to
node 1 (`stop_app`, `reset`, `join_cluster`, `start_app`); `stop()` stops them all, kills what does
not stop, and removes the folder. deploy/rabbitmq-cluster.md describes the same set-up on three hosts.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SBIN = Path("/usr/lib/rabbitmq/bin")
SERVER, CTL = SBIN / "rabbitmq-server", SBIN / "rabbitmqctl"
CTL_TIMEOUT_S = 120.0


def installed() -> bool:
    """Whether this machine has RabbitMQ's server and CLI scripts."""
    return SERVER.exists() and CTL.exists() and shutil.which("erl") is not None


def free_port(taken: set[int]) -> int:
    """A port nothing listens on now, not in `taken` (to which it is added)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


@dataclass
class Node:
    name: str  # relais-<run>-<n>@localhost
    port: int  # AMQP
    dist_port: int  # Erlang distribution
    base: Path  # its folder: data, logs, configuration
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log: object = None
    killed: bool = False

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"


@dataclass
class RabbitCluster:
    size: int = 3
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="relais-rabbit-cluster-")))
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        run = secrets.token_hex(3)
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)  # Erlang refuses a cookie others may read
        ports: set[int] = set()
        for n in range(1, self.size + 1):
            base = self.root / f"node{n}"
            for sub in ("mnesia", "log"):
                (base / sub).mkdir(parents=True)
            port, dist_port = free_port(ports), free_port(ports)
            (base / "rabbitmq.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{port}\n"
                "log.file.level = info\n"
                "log.console = false\n")
            (base / "enabled_plugins").write_text("[].\n")
            (base / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's, which names the machine's node
            name = f"relais-{run}-{n}@localhost"
            env = {
                **os.environ,
                "HOME": str(self.root),  # the cookie
                "RABBITMQ_NODENAME": name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(port),
                "RABBITMQ_DIST_PORT": str(dist_port),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
                "RABBITMQ_PID_FILE": str(base / "pid"),
                # One scheduler, no busy-waiting: three nodes share a small machine with the tests.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none "
                                                       "-kernel inet_dist_use_interface {127,0,0,1}",
            }
            self.nodes.append(Node(name, port, dist_port, base, env))

    # -- the URIs Relais is given ---------------------------------------------------------------

    def amqp_uri(self, *order: int) -> str:
        """RELAIS_AMQP_URI listing the nodes (indexes from 0), in this order (default: all, in order)."""
        return ",".join(self.nodes[i].uri for i in (order or range(self.size)))

    # -- rabbitmqctl ----------------------------------------------------------------------------

    def ctl(self, node: Node, *args: str, timeout: float = CTL_TIMEOUT_S, check: bool = True) -> str:
        done = subprocess.run([str(CTL), "-n", node.name, *args], env=node.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {node.name} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}\n{done.stderr}\n{self.logs(node)}")
        return done.stdout

    def logs(self, node: Node, tail: int = 4000) -> str:
        texts = []
        for path in sorted((node.base / "log").glob("*.log")) + [node.base / "console.log"]:
            if path.exists():
                texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(texts)

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> RabbitCluster:
        try:
            for node in self.nodes:
                node.log = open(node.base / "console.log", "wb")
                node.process = subprocess.Popen([str(SERVER)], env=node.env, stdout=node.log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)  # its group: killed whole at the end
            for node in self.nodes:  # `wait` waits for the pid file, then the node's start (await_startup does not)
                self.ctl(node, "wait", str(node.base / "pid"), "--timeout", str(int(CTL_TIMEOUT_S)))
            first = self.nodes[0]
            for node in self.nodes[1:]:
                self.ctl(node, "stop_app")
                self.ctl(node, "reset")
                self.ctl(node, "join_cluster", first.name)
                self.ctl(node, "start_app")
            for node in self.nodes:
                self.ctl(node, "await_startup", "--timeout", str(int(CTL_TIMEOUT_S)))
            members = self.running_nodes(first)
            if sorted(members) != sorted(n.name for n in self.nodes):
                raise RuntimeError(f"the cluster runs {members}, not its {self.size} nodes")
        except BaseException:
            self.stop()
            raise
        return self

    def running_nodes(self, asked: Node) -> list[str]:
        """The cluster's running nodes, as `asked` sees them."""
        out = self.ctl(asked, "eval", "rabbit_nodes:all_running().")
        return [part.strip(" '\n[]") for part in out.strip().strip("[]").split(",") if part.strip(" '\n[]")]

    def os_pid(self, node: Node) -> int:
        return int(self.ctl(node, "eval", "os:getpid().").strip().strip('"'))

    def kill(self, node: Node) -> None:
        """Lose `node` as a crash would: its Erlang VM killed (SIGKILL), its connections cut without a word."""
        os.kill(self.os_pid(node), signal.SIGKILL)
        node.killed = True
        if node.process is not None:
            node.process.wait(60)

    def stop(self) -> None:
        """Stop every node (kill what does not stop), and remove the folder; safe to call twice."""
        for node in self.nodes:
            if node.process is None:
                continue
            if node.process.poll() is None and not node.killed:
                try:
                    self.ctl(node, "stop", timeout=60, check=False)
                except subprocess.TimeoutExpired:
                    pass
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(node.process.pid, signal.SIGKILL)  # the script, erl and its helpers
            except ProcessLookupError:
                pass
            node.process.wait(30)
            node.process = None
            if node.log is not None:
                node.log.close()  # type: ignore[attr-defined]
        shutil.rmtree(self.root, ignore_errors=True)

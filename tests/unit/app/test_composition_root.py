"""The composition root: the `relais` command and app/bootstrap.py know the same services."""

from app import cli
from app.bootstrap import PROCESSES, service_queues


def test_the_command_serves_every_declared_service_and_only_those():
    assert set(cli.SERVICES) == set(PROCESSES)
    # a service's processes are named after it (provisioning-api: provisioning's HTTP APIs), and it has a group
    assert {name.split("-")[0] for name in PROCESSES} <= set(cli.GROUPS)
    assert all(process.service == name for name, process in PROCESSES.items())


def test_a_service_is_seen_running_on_its_rpc_queue_else_its_consumer_queue():
    assert service_queues() == {"console": None, "directory": "rpc-directory", "provisioning": "relais.q.provisioning",
                                "provisioning-api": None, "sso": None, "usage": "relais.q.usage",
                                "vault": "rpc-vault"}

"""Running a Relais service: what a service declares (`process`) and the one runner that starts it.

- `process`: `Process`, `Parts`, `Consumer`, `Timer`, `Http`, `Context`, `StartError`: what a
  service's `process.py` declares and builds;
- `runner`: `run(process, ...)`, for every service (`relais serve NAME` through the composition root);
- `rpc`: nameko RPC entrypoints over a service's plain functions (under eventlet), and its client;
- `callers`: who called an RPC method (the broker user RabbitMQ checked), and whether they may;
- `broker_users`: each service's RabbitMQ user and permissions (`relais deploy broker-users`);
- `call`: `python -m relais.runtime.call SERVICE METHOD ARGS` (`relais rpc`); `call_args`: what its
  arguments stand for (strings as written, `json:` for other types);
- `status`: `relais status`, the state of a running stack.
"""

from .process import OPERATOR, Consumer, Context, Http, Parts, Process, RpcMethod, StartError, Timer

__all__ = ["OPERATOR", "Consumer", "Context", "Http", "Parts", "Process", "RpcMethod", "StartError", "Timer"]

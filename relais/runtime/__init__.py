"""Running a Relais service: what a service declares (`process`) and the one runner that starts it.

- `process`: `Process`, `Parts`, `Consumer`, `Timer`, `Http`, `Context`, `StartError`: what a
  service's `process.py` declares and builds;
- `runner`: `run(process, ...)`, for every service (`relais serve NAME` through the composition root);
- `rpc`: nameko RPC entrypoints over a service's plain functions (under eventlet);
- `call`: `python -m relais.runtime.call SERVICE METHOD ARGS` (`relais rpc`);
- `status`: `relais status`, the state of a running stack.
"""

from .process import Consumer, Context, Http, Parts, Process, StartError, Timer

__all__ = ["Consumer", "Context", "Http", "Parts", "Process", "StartError", "Timer"]

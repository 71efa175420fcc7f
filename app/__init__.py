"""The composition root: the one place that knows every service and wires them together.

- `bootstrap`: each service's process declaration and the ports it gets from the others;
- `cli`: the `relais` command (the kernel's commands and every service's group);
- `serve`: `relais serve NAME` in a fresh interpreter (`python -m app.serve NAME`).

Nothing else imports `services/`: the kernel (`relais/`) serves them all without
knowing them, and no service imports another (what one needs of another is a
port handed in here, or the bus).
"""

"""The usage service's rules (services/usage/rules/), alone: no I/O."""

"""The event bus shared by every Relais service.

- `envelope`: the one event envelope (`Event`, `new_event`, JSON encoding);
- `contracts`: JSON Schema validation against `contracts/`;
- `topology`: exchange and queue names and their declaration;
- `outbox`: the transactional outbox and its relay to RabbitMQ;
- `publisher`: confirmed, pipelined publishing;
- `consumer`: idempotent consumption with retries and dead-lettering.
"""

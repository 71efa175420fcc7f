"""The vault against real servers: SQLite and PostgreSQL, RabbitMQ, moto's S3 server, WebDAV and CalDAV/CardDAV."""

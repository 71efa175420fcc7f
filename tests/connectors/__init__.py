"""The connectors and their SDK, against real servers (wsgidav, Radicale) and archives made on the spot."""

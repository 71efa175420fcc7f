"""Real third-party servers for tests, each on a free port of 127.0.0.1 in a thread.

* :func:`serve_wsgi` runs any WSGI app under cheroot (threaded, keep-alive);
* :func:`wsgidav_app` is wsgidav serving a folder, with Basic auth and dead properties;
* :func:`radicale_app` is Radicale (CalDAV/CardDAV) storing in a folder, with Basic auth.

Test-only dependencies (wsgidav, radicale, cheroot: the ``test`` extra) are imported here, at
the top: this module serves the tests and ``tools/`` (demo, benchmarks), and nothing Relais
runs imports it.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import radicale
from cheroot import wsgi
from radicale import config as rconfig
from wsgidav.fs_dav_provider import FilesystemProvider
from wsgidav.wsgidav_app import WsgiDAVApp

WSGIApp = Callable[..., Any]


@contextlib.contextmanager
def serve_wsgi(app: WSGIApp, *, threads: int = 8, timeout: int = 10) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://127.0.0.1:<port>``)."""
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads, timeout=timeout, shutdown_timeout=2)
    server.prepare()
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name=f"wsgi-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(timeout=5)


def wsgidav_app(root: Path, users: dict[str, str] | None = None) -> WSGIApp:
    """wsgidav over the folder ``root``, with dead properties kept in memory.

    ``users`` maps user name to password (Basic auth); None allows anonymous access.
    """
    root.mkdir(parents=True, exist_ok=True)
    mapping: Any = {"*": {u: {"password": p} for u, p in users.items()}} if users else {"*": True}
    config = {
        "provider_mapping": {"/": FilesystemProvider(str(root))},
        "simple_dc": {"user_mapping": mapping},
        "http_authenticator": {"domain_controller": None, "accept_basic": True, "accept_digest": False,
                               "default_to_digest": False},
        "property_manager": True,
        "lock_storage": True,
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
    }
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    return WsgiDAVApp(config)


def radicale_app(folder: Path, users: dict[str, str] | None = None) -> WSGIApp:
    """Radicale storing in ``folder``. ``users``: Basic auth (plain htpasswd); None: any user.

    Rights: authenticated users may read and write everything, so one service account can
    import for every owner (the way an export/import job works).
    """
    folder.mkdir(parents=True, exist_ok=True)
    auth: dict[str, str] = {"type": "none"}
    if users:
        htpasswd = folder / "htpasswd"
        htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in users.items()), encoding="utf-8")
        auth = {"type": "htpasswd", "htpasswd_filename": str(htpasswd), "htpasswd_encryption": "plain",
                "delay": "0"}
    conf = rconfig.load()
    conf.update({"storage": {"filesystem_folder": str(folder / "collections")}, "auth": auth,
                 "rights": {"type": "authenticated"}, "logging": {"level": "error", "mask_passwords": "True"}},
                "relais-tests", privileged=True)
    logging.getLogger("radicale").setLevel(logging.ERROR)
    return radicale.Application(conf)

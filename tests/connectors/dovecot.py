"""An unprivileged Dovecot (Debian's dovecot-imapd) on a free port, its config, mail and TLS key in a
temporary folder: never the system's service. A master user logs in as any account (SASL PLAIN
authorization identity), as a Relais deployment's service account does."""
from __future__ import annotations

import contextlib
import datetime
import grp
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
MASTER = "relais"


@dataclass(frozen=True)
class Dovecot:
    port: int
    tls_port: int
    ca: Path
    password: str
    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@contextlib.contextmanager
def dovecot(password: str = "master-s3cret") -> Iterator[Dovecot]:
    """Start Dovecot in a fresh folder of the system's temporary one (traversable by the user it runs as:
    pytest's own are private to root) and stop it on exit, removing the folder."""
    with tempfile.TemporaryDirectory(prefix="relais-dovecot-") as tmp:
        yield from _dovecot(Path(tmp), password)


def _dovecot(root: Path, password: str) -> Iterator[Dovecot]:
    if not os.path.exists(DOVECOT):
        raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd: scripts/ensure-services.sh)")
    # Run as whoever runs the tests, or as nobody when that is root (Dovecot's login processes refuse root).
    me = pwd.getpwnam("nobody") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    group = grp.getgrgid(me.pw_gid).gr_name
    root.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    cert, key = _certificate(root)
    (root / "master.passwd").write_text(f"{MASTER}:{{PLAIN}}{password}\n")
    if os.getuid() == 0:
        for path in (root, *root.rglob("*")):
            os.chown(path, me.pw_uid, me.pw_gid)
    port, tls_port = _free_port(), _free_port()
    conf = root / "dovecot.conf"
    conf.write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain
auth_master_user_separator = *
default_login_user = {me.pw_name}
default_internal_user = {me.pw_name}
default_internal_group = {group}
first_valid_uid = {me.pw_uid}
first_valid_gid = {me.pw_gid}
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
  }}
}}
passdb {{
  driver = passwd-file
  master = yes
  args = {root}/master.passwd
}}
passdb {{
  driver = static
  args = password={secrets.token_hex(24)}
}}
userdb {{
  driver = static
  args = uid={me.pw_uid} gid={me.pw_gid} home={root}/mail/%u allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    user = {me.pw_name}
  }}
  unix_listener stats-writer {{
    user = {me.pw_name}
  }}
}}
""")
    as_root = os.getuid() == 0
    with (root / "stderr.log").open("wb") as err:
        proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, user=me.pw_uid if as_root else None,
                                group=me.pw_gid if as_root else None, extra_groups=[] if as_root else None)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                socket.create_connection(("127.0.0.1", tls_port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = "".join(p.read_text() for p in (root / "dovecot.log", root / "stderr.log") if p.exists())
                    raise RuntimeError(f"dovecot did not listen on {port}: {log[-2000:]}") from None
                time.sleep(0.1)
        yield Dovecot(port, tls_port, cert, password, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""CAS `renew=true`: only a login made after the request satisfies it (pure).

`/cas/login?renew=true` sends the browser through the national IdP again with a
signed moment (`auth_after`, milliseconds since the epoch, HMAC-signed with the
deployment secret) in the way back; on the way back, a session satisfies the
request only when its login is at or after that moment. A stamp whose signature
is not ours is refused (`ForgedStamp`): nobody can make an old login look fresh.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime


class ForgedStamp(ValueError):
    """A renew stamp that this deployment did not sign."""


def renew_stamp(now: datetime, secret: bytes) -> str:
    """A signed moment: a session authenticated at or after it satisfies renew=true."""
    stamp = str(int(now.timestamp() * 1000))  # milliseconds: a login in the same second is not "after"
    return f"{stamp}.{_sign(stamp, secret)}"


def logged_in_after(token: str | None, logged_in_at: datetime, secret: bytes) -> bool:
    """Whether a login at `logged_in_at` is fresh for the stamp `token` (False without a stamp);
    raises `ForgedStamp` when the stamp's signature is not ours."""
    if not token or "." not in token:
        return False
    stamp, mac = token.split(".", 1)
    if not stamp.isdigit() or not hmac.compare_digest(mac, _sign(stamp, secret)):
        raise ForgedStamp("the renew stamp's signature is not ours")
    return logged_in_at.timestamp() * 1000 >= int(stamp)


def _sign(value: str, secret: bytes) -> str:
    return hmac.new(secret, b"cas-renew:" + value.encode(), hashlib.sha256).hexdigest()[:32]

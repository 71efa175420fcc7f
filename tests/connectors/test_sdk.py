"""The SDK's plain parts: retries with backoff and jitter, the rate limiter, URL redaction,
announced digests, secrets, configuration, the registry, item checks."""
from __future__ import annotations

import base64
import copy
import hashlib
import pickle
import random

import pytest

from connectors.sdk import (
    BadItem,
    BasicAuth,
    BytesContent,
    ConfigError,
    ConnectorConfig,
    ConnectorInfo,
    Importer,
    Item,
    NotFound,
    Outcome,
    RateLimiter,
    RetriesExhausted,
    RetryPolicy,
    Secret,
    TransientError,
    check_path,
    redact_url,
    registry,
)
from connectors.sdk.http import announced_sha256
from connectors.sdk.retry import call_with_retries


def test_backoff_grows_exponentially_with_full_jitter_and_a_ceiling():
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=4.0, rng=random.Random(7))
    for retry in range(1, 9):
        ceiling = min(4.0, 0.5 * 2 ** (retry - 1))
        draws = [policy.delay(retry) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8 and len(set(draws)) > 150  # spread, not in step
    assert policy.delay(1, retry_after=3.0) >= 3.0 and policy.delay(1, retry_after=60) <= 4.0


def test_retries_are_bounded_and_only_for_transient_errors():
    sleeps: list[float] = []
    calls = []

    def flaky():
        calls.append(1)
        raise TransientError("HTTP 503", connector="x", url="http://h/a", item="o:documents/a")

    with pytest.raises(RetriesExhausted) as info:
        call_with_retries(flaky, RetryPolicy(attempts=4, base_delay=0.1), what="GET http://h/a", sleep=sleeps.append)
    assert len(calls) == 4 and len(sleeps) == 3
    assert str(info.value) == ("x: GET http://h/a failed after 4 attempts over 0.0 s: HTTP 503 "
                               "(item 'o:documents/a', URL http://h/a)")
    calls.clear()

    def missing():
        calls.append(1)
        raise NotFound("HTTP 404")

    with pytest.raises(NotFound):
        call_with_retries(missing, RetryPolicy(attempts=4), what="GET", sleep=sleeps.append)
    assert len(calls) == 1
    outcomes = iter([TransientError("t"), "ok"])

    def once():
        v = next(outcomes)
        if isinstance(v, Exception):
            raise v
        return v

    assert call_with_retries(once, RetryPolicy(), what="x", sleep=lambda s: None) == "ok"


def test_the_deadline_stops_retries_early():
    policy = RetryPolicy(attempts=100, base_delay=10, max_delay=10, deadline=0.001, rng=random.Random(1))
    n = []

    def fail():
        n.append(1)
        raise TransientError("t")

    with pytest.raises(RetriesExhausted):
        call_with_retries(fail, policy, what="x", sleep=lambda s: None)
    assert len(n) < 100


def test_rate_limiter_spaces_requests():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(5, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(11):
        limiter.acquire()
    assert now[0] == pytest.approx(2.0, abs=1e-6)  # 10 waits of 1/5 s after the first token


def test_urls_in_messages_carry_no_credentials():
    assert redact_url("https://u:pw@dav.example:8443/a%20b/?access_token=abc&x=1") == \
        "https://dav.example:8443/a%20b/?access_token=***&x=***"


def test_announced_digests_are_read_from_the_usual_headers():
    data = b"bonjour"
    hexd = hashlib.sha256(data).hexdigest()
    b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert announced_sha256({"Repr-Digest": f"sha-512=:AAA=:, sha-256=:{b64}:"}) == hexd
    assert announced_sha256({"Digest": f"MD5=xyz, SHA-256={b64}"}) == hexd
    assert announced_sha256({"OC-Checksum": f"SHA1:abc SHA256:{hexd.upper()}"}) == hexd
    assert announced_sha256({"Repr-Digest": "sha-256=:not base64!:"}) is None
    assert announced_sha256({}) is None


def test_secrets_do_not_show():
    auth = BasicAuth("relais", Secret("pw-123"))
    assert "pw-123" not in repr(auth) + str(auth.password) + auth.describe()
    assert auth.headers()["Authorization"] == "Basic " + base64.b64encode(b"relais:pw-123").decode()
    with pytest.raises(TypeError):
        pickle.dumps(auth.password)
    assert copy.deepcopy(auth) == auth  # configurations can be copied, secrets stay unpicklable
    cfg = ConnectorConfig.from_mapping({"url": "https://h/", "auth": {"type": "bearer", "token_env": "T"}},
                                       environ={"T": "tok-xyz"})
    assert "tok-xyz" not in repr(cfg) + str(cfg.describe()) + repr(cfg.http_client("c"))


def test_configuration_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        ConnectorConfig.from_mapping({"url": "https://h/", "colour": 1})
    with pytest.raises(ConfigError, match="url is required"):  # only connectors talking to a server need one
        registry.open_exporter("webdav", ConnectorConfig.from_mapping({}))
    with pytest.raises(ConfigError, match="token_env"):
        ConnectorConfig.from_mapping({"url": "https://h/", "auth": {"type": "bearer", "token": "x"}})
    with pytest.raises(ConfigError, match="unknown retries key.*tries"):
        ConnectorConfig.from_mapping({"url": "https://h/", "retries": {"tries": 3}})
    for bad in (5, ["attempts"]):  # a section that is not a mapping is said, not a crash
        with pytest.raises(ConfigError, match="retries must be a mapping of attempts, base_delay"):
            ConnectorConfig.from_mapping({"url": "https://h/", "retries": bad})
    with pytest.raises(ConfigError, match="http"):
        ConnectorConfig.from_mapping({"url": "ftp://h/"})
    cfg = ConnectorConfig.from_mapping({"url": "https://h/", "retries": {"attempts": 2, "deadline": None},
                                        "rate_limit": 20, "workers": 3, "options": {"page_size": 10}})
    assert cfg.retry.attempts == 2 and cfg.retry.deadline is None and cfg.rate_limit == 20
    assert cfg.http_client("c").rate_limit is not None


def test_config_files_are_read(tmp_path):
    p = tmp_path / "ent-a.yaml"
    p.write_text("url: https://ent-a.example/dav/\nauth: {type: basic, username: relais, password_env: PW}\n")
    assert ConnectorConfig.from_file(p, environ={"PW": "x"}).auth.describe() == "basic as 'relais'"
    p.write_text("url: [unclosed\n")
    with pytest.raises(ConfigError, match="ent-a.yaml: not valid YAML"):
        ConnectorConfig.from_file(p)


class MemoryImporter(Importer):
    """The smallest importer: what the base class checks is what is tested here."""

    def __init__(self):
        super().__init__("memory", "documents")
        self.store: dict = {}

    def write(self, item):
        key = (item.owner, item.id)
        old = self.store.get(key)
        self.store[key] = (item.sha256, dict(item.metadata))
        if old is None:
            return Outcome.CREATED
        return Outcome.UNCHANGED if old == self.store[key] else Outcome.UPDATED


def test_registry_knows_the_builtins_and_registered_connectors():
    assert {"webdav", "caldav", "carddav"} <= set(registry.names())
    info = ConnectorInfo("memory-test", ("documents",), "in memory", importer=lambda c, v: MemoryImporter())
    registry.register(info)
    try:
        assert isinstance(registry.open_importer("memory-test", {"url": "http://x/"}), MemoryImporter)
        with pytest.raises(ConfigError, match="already registered"):
            registry.register(info)
        with pytest.raises(ConfigError, match="cannot export"):
            registry.open_exporter("memory-test", {"url": "http://x/"})
    finally:
        registry.unregister("memory-test")


@pytest.mark.parametrize("bad,word", [("../x", "'..'"), ("/abs", "absolute"), ("a//b", "empty"), ("", "non-empty"),
                                      ("a\\b", "backslash")])
def test_unsafe_paths_are_refused(bad, word):
    with pytest.raises(BadItem, match=word):
        check_path(bad)


def test_importer_checks_before_writing():
    imp = MemoryImporter()
    good = Item.from_bytes("o", "documents", "a/b.txt", b"x", metadata={"media_type": "text/plain"})
    assert imp.put(good) == Outcome.CREATED and imp.put(good) == Outcome.UNCHANGED
    liar = Item(owner="o", vertical="documents", id="c.txt", path="c.txt",
                content=BytesContent(b"x", sha256="0" * 64))
    nfd = Item.from_bytes("o", "documents", "e\u0301.txt", b"x")
    folder_with_bytes = Item.from_bytes("o", "documents", "d", b"x", kind="folder")
    for bad, word in ((liar, "sha256"), (nfd, "NFC"), (folder_with_bytes, "no content"),
                      (Item.from_bytes("o/p", "documents", "x", b""), "owner")):
        with pytest.raises(BadItem, match=word) as info:
            imp.put(bad)
        assert str(info.value).startswith("memory: ")
    report = imp.import_items([liar, Item.from_bytes("o", "documents", "z", b"z")])
    assert report.to_dict()["created"] == 1 and report.failed == 1 and "sha256" in report.failures[0]["error"]
    assert ("o", "c.txt") not in imp.store

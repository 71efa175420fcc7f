"""Where the SSO may send a browser after a login or a logout (rules/redirects.py)."""

from __future__ import annotations

from services.sso.rules.redirects import LOCAL_NEXT_DEFAULT, return_url_allowed, safe_next


def test_after_login_only_local_cas_and_idp_paths_are_followed():
    for ok in ("/cas/login?service=https%3A%2F%2Fapp.example%2F", "/idp/sso/continue?request=abc"):
        assert safe_next(ok) == ok
    for bad in (None, "", "https://evil.example/", "//evil.example/cas/", "/saml/login", "/cas\\..\\x",
                "/cas/login\r\nSet-Cookie: x", "/cas/\x7f", "/cas/" + "x" * 4092):
        assert safe_next(bad) == LOCAL_NEXT_DEFAULT == "/cas/login", bad


def test_after_logout_a_return_url_on_the_idps_hosts_over_https():
    hosts = {"educonnect.example"}
    https = "https://ent.example"
    assert return_url_allowed("https://educonnect.example/logout/done", hosts, base_url=https)
    assert return_url_allowed("https://EduConnect.Example/done", hosts, base_url=https)
    assert not return_url_allowed("http://educonnect.example/done", hosts, base_url=https)
    assert not return_url_allowed("https://evil.example/done", hosts, base_url=https)
    assert not return_url_allowed("https://user@educonnect.example/done", hosts, base_url=https)
    assert not return_url_allowed("javascript:alert(1)", hosts, base_url=https)
    assert not return_url_allowed("https://educonnect.example/done", set(), base_url=https)
    # an http deployment (local tests) may return over http
    assert return_url_allowed("http://educonnect.example/done", hosts, base_url="http://127.0.0.1:8430")

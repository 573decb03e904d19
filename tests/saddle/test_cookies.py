from __future__ import annotations

import pytest

from skitai.saddle.cookies import NEVER, CookieJar, parse_cookie_header


def test_reading_is_dict_like() -> None:
    jar = CookieJar("a=1; b=two; a=shadowed; bad name=x; novalue", default_path="/app")
    assert jar["a"] == "1" and jar.get("b") == "two" and jar.get("c", "d") == "d"
    assert "a" in jar and "c" not in jar and jar.has_key("b")
    assert sorted(jar) == ["a", "b"] and len(jar) == 2
    assert sorted(jar.items()) == [("a", "1"), ("b", "two")]
    assert sorted(jar.iteritems()) == sorted(jar.items())
    assert list(jar.iterkeys()) == jar.keys() and list(jar.itervalues()) == jar.values()
    with pytest.raises(KeyError):
        jar["c"]


def test_several_headers_and_quotes() -> None:
    jar = CookieJar(['a="quoted value"', "b=2; a=later"])
    assert jar["a"] == "quoted value" and jar["b"] == "2"


def test_from_environ() -> None:
    jar = CookieJar.from_environ({"HTTP_COOKIE": "x=1", "SCRIPT_NAME": "", "wsgi.url_scheme": "https"})
    assert jar.default_path == "/" and jar.https and jar["x"] == "1"
    jar = CookieJar.from_environ({"SCRIPT_NAME": "/sub"})
    assert jar.default_path == "/sub" and not jar.https and len(jar) == 0


def test_nothing_changed_nothing_sent() -> None:
    assert CookieJar("a=1").set_cookie_headers() == []


def test_set_defaults() -> None:
    jar = CookieJar(default_path="/app")
    jar.set("username", "Hans Roh")
    assert jar["username"] == "Hans Roh"
    (line,) = jar.set_cookie_headers()
    assert line == "username=Hans%20Roh; Path=/app; SameSite=Lax"
    jar = CookieJar(https=True)
    jar["k"] = "v"
    assert jar.set_cookie_headers() == ["k=v; Path=/; Secure; SameSite=Lax"]


def test_set_attributes() -> None:
    jar = CookieJar()
    jar.set("a", "1", expires=60, path="/p", domain="example.com", secure=True, http_only=True,
            same_site="strict")
    (line,) = jar.set_cookie_headers()
    assert line.startswith("a=1; Path=/p; Domain=example.com; Max-Age=60; Expires=")
    assert line.endswith(" GMT; Secure; HttpOnly; SameSite=Strict")
    jar.set("n", "1", expires="never", same_site="None")
    assert f"Max-Age={NEVER};" in jar.set_cookie_headers()[1] and "Secure" in jar.set_cookie_headers()[1]


def test_values_cannot_inject() -> None:
    jar = CookieJar()
    hostile = 'x; Domain=evil.com\r\nSet-Cookie: admin=1, "\\'
    jar.set("a", hostile)
    (line,) = jar.set_cookie_headers()
    value = line.split(";")[0]
    assert all(c not in value for c in ' ;,"\\\r\n')
    # and it round-trips through a Cookie header
    assert CookieJar(value)["a"] == hostile


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "a\r\nb", "é", 'a"'])
def test_bad_names_refused(name: str) -> None:
    with pytest.raises(ValueError):
        CookieJar().set(name, "v")


@pytest.mark.parametrize("options", [{"path": "/a;b"}, {"path": "relative"}, {"domain": "a\r\nb"},
                                     {"domain": "x; Secure"}, {"same_site": "sometimes"},
                                     {"same_site": "None", "secure": False}, {"expires": "tomorrow"},
                                     {"expires": True}])
def test_bad_attributes_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CookieJar().set("a", "v", **options)  # type: ignore[arg-type]


def test_numbers_are_written_as_text_other_values_refused() -> None:
    jar = CookieJar()
    jar.set("n", 1)
    assert jar.set_cookie_headers() == ["n=1; Path=/; SameSite=Lax"]
    for value in (b"bytes", None, True, ["x"]):
        with pytest.raises(TypeError):
            jar.set("a", value)  # type: ignore[arg-type]


def test_attribute_reading_as_templates_write_it() -> None:
    jar = CookieJar("username=hans")
    assert (jar.username, jar.absent) == ("hans", None)


def test_remove_and_clear() -> None:
    jar = CookieJar("a=1; b=2", default_path="/app")
    jar.remove("a", path="/")
    assert "a" not in jar
    (line,) = jar.set_cookie_headers()
    assert line.startswith("a=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    jar.clear()
    assert len(jar) == 0
    assert [h.split(";")[:2] for h in jar.set_cookie_headers()][1:] == [["b=", " Path=/app"]]
    del CookieJar("a=1")["a"]
    with pytest.raises(KeyError):
        del CookieJar()["a"]


def test_last_change_per_cookie_wins() -> None:
    jar = CookieJar()
    jar.set("a", "1")
    jar.set("a", "2")
    jar.set("a", "3", path="/other")
    assert [h.split(";")[0] for h in jar.set_cookie_headers()] == ["a=2", "a=3"]


def test_parse_never_raises_on_junk() -> None:
    assert parse_cookie_header(";;=;=x;\x00=1;a=%ZZ%E0;b") == {"a": "%ZZ\ufffd"}

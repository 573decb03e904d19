"""Every Saddle example of the seed, served from tests/saddle/seedsite, end to end.

Chapters: "Request Handling with Skito-Saddle" to "Logging and Traceback",
"Implementing XMLRPC Service", the utility services of `was`, the HTTP/2
`hint_promise` example. The seed's only cookie example, `{{ was.cookie.username }}`,
is in its templates chapter; sessions and message boxes travel in the
client's cookie jar.
"""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
import sys
import xmlrpc.client
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme

from tests.saddle.conftest import client_for
from tests.saddle.seedsite import decorators, mbox, overlay, upload
from tests.saddle.seedsite.larger import admin
from tests.support.processes import free_port, stop, wait_until_serving
from tests.support.servers import serving

SITE = "tests.saddle.seedsite"
SITEDIR = Path(__file__).parent / "seedsite"
PICNIC = (SITEDIR / "mypicnic.mp4").read_bytes()


async def test_basics_mounted_at_math() -> None:
    async with client_for(("/math", f"{SITE}.basics:app")) as client:
        assert (await client.get("/math/config")).text == "5242880 5242880 20971520 20000000 1"
        hello = "<p>Hello from a template</p>"
        assert (await client.get("/math/hello")).text == hello
        assert (await client.post("/math/restricted")).status_code == 405
        assert (await client.get("/math/restricted")).status_code == 415
        response = await client.get("/math/restricted", headers={"content-type": "text/xml"})
        assert response.text == hello
        for way in ("hello1", "hello2", "hello3"):  # "Above 3 examples will make exacltly same result."
            response = await client.get(f"/math/{way}")
            assert response.text == hello and response.headers["cache-control"] == "max-age=60"
        response = await client.get("/math/err404")
        assert response.status_code == 404 and response.text == "<p>Sorry, not here</p>"
        response = await client.get("/math/default404")
        assert response.status_code == 404 and "404 Not Found" in response.text
        response = await client.get("/math/raise_exception")
        assert response.status_code == 500 and "ValueError: Test Error" in response.text
        response = await client.get("/math/streaming")
        assert response.headers["content-type"] == "video/mp4" and response.content == PICNIC
        response = await client.get("/math/csv")
        assert response.text == "a,b\nc,d\n" and response.headers["content-type"] == "text/csv"


async def test_request_parameters_and_urls() -> None:
    async with client_for(("/math", f"{SITE}.basics:app")) as client:
        info = (await client.post("/math/request?a=1", content=b"x=2", headers={
            "content-type": "application/x-www-form-urlencoded", "user-agent": "seed"})).json()
        assert info == {
            "command": "post", "version": "1.1", "uri": "/math/request?a=1", "args": {"a": "1", "x": "2"},
            "split_uri": ["/math/request", None, "a=1", None],
            "content_type_header": "application/x-www-form-urlencoded", "headers": True, "body": "x=2",
            "scheme": "http", "remote_addr": "127.0.0.1", "user_agent": "seed",
            "content_type": "application/x-www-form-urlencoded", "main_type": "application",
            "sub_type": "x-www-form-urlencoded",
        }
        assert (await client.get("/math/params")).text == "8"
        assert (await client.get("/math/params?num=100")).text == "100"
        assert (await client.get("/math/params/100")).text == "100"
        assert (await client.get("/math/args?num=3")).text == "3"
        assert (await client.get("/math/download/1/version/1.1/win32")).text == "1 version/1.1/win32"
        data = {"userid": "hansroh", "comment": "hello"}
        assert (await client.post("/math/form", data=data)).text == "Post hansroh hello"
        assert (await client.post("/math/form2", data=data)).text == "Post hansroh hello"
        assert (await client.get("/math/urls")).text.split("\n") == [
            "/math/add?num1=10&num2=40", "/math/add?num1=10&num2=40", "/math/add?num1=10&num2=60",
            "/math/hello/Your_Name",
        ]
        assert (await client.get("/math/add?num1=10&num2=40")).text == "50"
        assert (await client.get("/math/hello/Your_Name")).text == "Hello, Your Name"
        response = await client.get("/math/env",
                                    headers={"user-agent": "agent", "content-type": "text/plain"})
        assert response.text == "agent text/plain"


async def test_hint_promise_example_over_http2() -> None:
    async with client_for(("/", f"{SITE}.basics:app"), http2=True) as client:
        response = await client.get("/promise")
    assert response.http_version == "HTTP/2" and response.text.startswith("Promise Sent")


async def test_jinja2_templates() -> None:
    async with client_for(("/jinja", f"{SITE}.jinja:app")) as client:
        expected = 'hans choices item 3.\n\n<a href="/jinja/checkout/3">Proceed</a> Apples'
        headers = {"Cookie": "username=hans"}
        assert (await client.get("/jinja/?choice=3", headers=headers)).text == expected
        assert (await client.get("/jinja/dict?choice=3", headers=headers)).text == expected
        assert (await client.get("/jinja/cant")).status_code == 500
        assert (await client.get("/jinja/g")).text.strip() == "Checkout for 10 Apples"
        assert (await client.get("/jinja/token")).text.strip() == "form-token"


async def test_jinja_overlay_renders_like_the_original_form() -> None:
    async with client_for(("/", f"{SITE}.overlay:app")) as client:
        overlaid = (await client.get("/")).text
        original = (await client.get("/original")).text
    rows = [line.strip() for line in overlaid.splitlines() if line.strip()]
    assert rows[:4] == ["<title>  Dash Board", "</title>", "<h1>Population of Japan</h1>", "<h2>Tokyo</h1>"]
    assert '<a href="/state/Korea/2">3</a>' in rows
    assert "<a href=\"#\" onclick=\"javascript: create_map ('Busan');\">Map</a>" in rows
    assert rows[-2:] == ["%HOME%/bin", '<a href="#" onclick="javascript: create_map ();">Map</a>']
    original_rows = [line.strip() for line in original.splitlines() if line.strip()]
    assert [r for r in rows if r.startswith("<a")][:-1] == [r for r in original_rows if r.startswith("<a")]
    assert overlay.bp_state is overlay.state_view


async def test_method_decorators_and_g() -> None:
    decorators.TRACE.clear()
    async with client_for(("/members", f"{SITE}.decorators:app")) as client:
        assert (await client.get("/members/view-account?userid=tom")).text == "account of tom"
        assert (await client.get("/members/view-account?userid=tom&login=no")).text == "Not Authorized"
        response = await client.get("/members/view-account?userid=fail")
        assert response.status_code == 501
        assert response.text == "<p>We&#39;re sorry but something&#39;s going wrong</p>"  # autoescaped
    assert decorators.TRACE == [
        "before_request", "finish_request jerry active", "teardown_request", "resource closed",
        "before_request", "teardown_request",
        "before_request", "failed_request ValueError", "teardown_request", "resource closed",
    ]


async def test_app_decorators_share_objects_server_wide() -> None:
    mounts = [("/members", f"{SITE}.decorators:app"), ("/register", f"{SITE}.register:app"),
              ("/", f"{SITE}.register:news")]
    async with client_for(mounts, threads=3) as client:
        assert (await client.get("/members/")).text == "user info, results for ipad"
        assert (await client.get("/register/")).text == "checked facebook, results for ipad"
        assert (await client.get("/")).text == "results for news"
    searcher: Any = decorators.REGISTERED["searcher"]
    assert searcher.numthreads == 3 and decorators.REGISTERED["threads"] == 3
    assert searcher.closed  # shutdown ran


async def test_access_session() -> None:
    async with client_for(("/", f"{SITE}.sessions:app")) as client:
        response = await client.get("/session?hansroh=hans")
        assert response.status_code == 200 and response.text == ""
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("SESSION_=S1.") and "; Path=/;" in cookie and "Max-Age=1200" in cookie
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        response = await client.get("/show")
        assert response.json() == {"items": {"user_id": "hans"}, "verified": True, "getv": "hans"}
        assert "set-cookie" not in response.headers  # nothing changed: nothing sent
        assert (await client.get("/methods")).json() == {
            "get": 1, "default": "none", "source_verified": True, "getv": 1,
            "keys": ["a", "b", "user_id"], "values": ["1", "[1, 2]", "hans"],
            "items": [["a", "1"], ["b", "[1, 2]"], ["user_id", "hans"]], "has_key": True,
            "iterkeys": ["a", "b", "user_id"], "itervalues": 3, "iteritems": 3,
            "after_remove": ["b", "user_id"], "after_clear": 0,
        }
        assert "SESSION_" not in client.cookies  # clear() ends the session
        assert (await client.get("/show")).json()["items"] == {}


async def test_named_session_and_messaging_box() -> None:
    async with client_for(("/", f"{SITE}.sessions:app")) as client:
        expired = "Your session maybe expired or signed out, please sign in again"
        assert (await client.get("/check")).text == expired
        await client.get("/session?hansroh=hans")
        admin_expired = "Your admin session maybe expired or signed out, please sign in again"
        assert (await client.get("/check")).text == admin_expired
        response = await client.get("/")
        lines = response.headers.get_list("set-cookie")
        assert sorted(line.split("=")[0] for line in lines) == ["NOTIS__ADM", "SESSION__ADM"]
        assert all("; Path=/admin;" in line for line in lines)
        assert (await client.get("/admin/")).json() == {
            "admin_login": True, "messages": [["warning", "10 data has been deleted"]]}
        assert (await client.get("/admin/")).json() == {"admin_login": True, "messages": []}
        # valid at /admin only: the browser sends those cookies nowhere else
        assert (await client.get("/elsewhere")).json() == {"admin_login": None}
        assert (await client.get("/check-mounted")).text == admin_expired
        # mounted at '/', the 'ADM' session is seen by every app of the host
        await client.get("/shared")
        assert (await client.get("/elsewhere")).json() == {"admin_login": True}
        assert (await client.get("/check-mounted")).text == "signed in"
        assert (await client.get("/same-as-default")).json() == {"user_id": "hans"}


async def test_messaging_box() -> None:
    mbox.NEW_ITEMS.clear()
    async with client_for(("/", f"{SITE}.mbox:app")) as client:
        response = await client.get("/msg")
        assert response.status_code == 302 and response.reason_phrase == "Object Moved"
        assert response.headers["location"] == "/showmsg?name=Hans+Roh"
        assert (await client.get("/fail")).status_code == 500  # read, but the page failed: kept
        page = (await client.get(response.headers["location"])).text
        assert "Messages To Hans Roh," in page
        assert "<li> : This is Flash Message</li>" in page  # the seed's template shows an undefined mtype
        assert "<li> : This is Alert Message Kept by 60 seconds on every request</li>" in page
        page = (await client.get("/showmsg?name=Hans")).text
        assert "Flash" not in page and "Kept by 60 seconds" in page  # valid=0 shown once, valid=60 stays

    async with client_for(("/", f"{SITE}.mbox:app")) as client:
        mbox.NEW_ITEMS.append("an item")
        page = (await client.get("/main")).text
        # get ("notice", "news") lists messages whose extra has notice="news": not this one
        assert page.split() == ["News", "for", ",", "<ul>", "</ul>"]
        assert (await client.get("/notices")).text == "New Item Arrived\n"  # it waited in the cookie
        assert (await client.get("/notices")).text == ""

    async with client_for(("/", f"{SITE}.mbox:app")) as client:
        assert (await client.get("/api")).json() == {
            "search_category": [3], "search_extra": [2], "source_verified": True,
            "by_extra": [], "by_category": ["third"],
            "getv": [["info", 30, "second", {"key": "b"}]], "left": ["second"],
        }


async def test_file_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved, spool = tmp_path / "saved", tmp_path / "spool"
    saved.mkdir()
    spool.mkdir()
    monkeypatch.setattr(upload, "SAVE_INTO", str(saved))
    monkeypatch.setattr(upload.app.config, "upload_tmpdir", str(spool))
    form = {"submit-hidden": "Genious", "submit-name": "Hans Roh"}
    async with client_for(("/", f"{SITE}.upload:app")) as client:
        assert (await client.get("/upload")).text == upload.FORM
        for content in (b"first version", b"second version"):
            response = await client.post("/upload", data=form,
                                         files={"file": ("report.txt", content, "text/plain")})
            assert response.status_code == 200 and response.text == ""
            assert (saved / "report.txt").read_bytes() == content  # dup = "o": overwritten
        # a file input left empty: no file, nothing saved
        empty = {"file": ("", b"", "application/octet-stream")}
        response = await client.post("/upload", data=form, files=empty)
        assert response.status_code == 200 and sorted(p.name for p in saved.iterdir()) == ["report.txt"]
        for unique in ("report-1.txt", "report-2.txt"):
            response = await client.post("/attributes", data=form,
                                         files={"file": ("C:\\docs\\report.txt", b"12345", "text/plain")})
            assert response.json() == {"path_exists": True, "name": "report.txt", "size": 5,
                                       "mimetype": "text/plain", "fields": ["submit-hidden", "submit-name"],
                                       "unique": str(saved / unique)}
        response = await client.post("/rename", files={"file": ("x.bin", b"data")})
        assert response.text == str(saved / "renamed" / "report.txt")
        assert (await client.post("/discard", files={"file": ("x.bin", b"abc")})).text == "3"
    assert os.listdir(spool) == []  # every temp file saved or removed


async def test_www_authenticate_digest(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "skitai.access")
    auth = httpx.DigestAuth("app", "iamyourpartnerapp")
    async with client_for([("/partner", f"{SITE}.auth:app"), ("/", f"{SITE}.auth:route_app")]) as client:
        response = await client.get("/partner/hello/Hans_Roh")
        assert response.status_code == 401
        challenges = response.headers.get_list("www-authenticate")
        assert [c.split(",")[0] for c in challenges] == ['Digest realm="Partner App Area of mysite.com"'] * 2
        assert (await client.get("/partner/hello/Hans_Roh", auth=auth)).text == "Hello, Hans Roh"
        assert (await client.get("/partner/user", auth=auth)).json() == {
            "name": "app", "realm": "Partner App Area of mysite.com", "info": {"role": "root"}}
        wrong = await client.get("/partner/user", auth=httpx.DigestAuth("app", "guess"))
        assert wrong.status_code == 401
        # authenticate = True on one route only
        assert (await client.get("/hello/x")).status_code == 401
        assert (await client.get("/hello/x", auth=auth)).text == "Hello, x"
        assert (await client.get("/open")).text == "open"
    lines = [r.getMessage() for r in caplog.records if r.name == "skitai.access"]
    users = [line.split(" ")[10] for line in lines if " 200 " in line]
    assert users == ['"app"'] * 3 + ["-"]  # the access log's user field


async def test_www_authenticate_user_entry_forms() -> None:
    async with client_for(("/", f"{SITE}.auth:forms_app")) as client:
        for name, password, info in (("partner", "iamyourpartnerapp", {"role": "partner"}),
                                     ("plain", "secret-two", None), ("simple", "secret-three", None)):
            response = await client.get("/user", auth=httpx.DigestAuth(name, password))
            assert response.json() == {"name": name, "realm": "Partner App Area of mysite.com", "info": info}
            assert response.request.headers["authorization"].count("algorithm=MD5") == 1


async def test_www_authenticate_basic_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with serving(mount=("/", f"{SITE}.auth:basic_app"), certfile=str(certfile),
                       keyfile=str(keyfile)) as served:
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{served.port}", verify=context) as client:
            refused = await client.get("/user")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == \
                'Basic realm="Partner App Area of mysite.com", charset="UTF-8"'
            response = await client.get("/user", auth=("app", "iamyourpartnerapp"))
            assert response.json() == {"name": "app", "info": {"role": "root"}}
            assert (await client.get("/user", auth=("app", "nope"))).status_code == 401


async def test_larger_app_with_saddlery(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "logo.txt").write_text("static")
    # "Mount Multiple Microservices": ("/service", ("/service/app", "app")), a file path without .py
    mounts = [("/site", f"{SITE}.larger.app:app"), ("/service", (str(SITEDIR / "basics"), "app")),
              ("/service/trade", (str(SITEDIR / "jinja"), "app")), ("/", str(static))]
    async with client_for(mounts) as client:

        async def traced(path: str) -> tuple[httpx.Response, list[str]]:
            admin.TRACE.clear()
            response = await client.get(path)
            return response, list(admin.TRACE)

        # hello function's can be accessed by '/[app mount point]/admin/Hans_Roh'
        response, trace = await traced("/site/admin/Hans_Roh")
        assert response.text == "/site/?num1=1&num2=2"
        assert trace == [
            "app.before_request", "sub-app.before_request", "hello()", "sub-app.finish_request",
            "sub-app.teardown_request", "app.finish_request", "app.teardown_request",
        ]
        response, trace = await traced("/site/admin/x?fail=1")
        assert response.status_code == 500
        assert trace == [
            "app.before_request", "sub-app.before_request", "hello()", "package.failed_request",
            "sub-app.teardown_request", "app.failed_request", "app.teardown_request",
        ]
        response, trace = await traced("/site/admin/x?login=no")
        assert response.text == "Not Authorized"
        assert trace == ["app.before_request", "sub-app.before_request", "sub-app.teardown_request",
                         "app.finish_request", "app.teardown_request"]
        assert (await client.get("/site/?num1=1&num2=2")).text == "/site/admin/Hans_Roh"
        assert (await client.get("/site/admin/admin/sub/y")).text == "sub y"
        assert (await client.get("/site/page")).text == "header | app index"
        assert (await client.get("/site/admin/page/z")).text == "header | admin index z"
        assert (await client.get("/site/members/m")).text == "members show m"
        # several microservices and a static directory on one server
        assert (await client.get("/service/add?num1=1&num2=2")).text == "3"
        assert (await client.get("/service/trade/checkout/3")).text == "checkout 3"
        assert (await client.get("/logo.txt")).text == "static"


async def test_xmlrpc_service() -> None:
    async with serving(mount=("/rpc", f"{SITE}.rpcservice:app")) as served:
        def client_side() -> Any:
            with xmlrpc.client.ServerProxy(f"{served.url}/rpc") as stub:
                return stub.add(10000, 5000)

        assert await anyio.to_thread.run_sync(client_side) == 15000


async def test_logging_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "skitai.app"):
        async with client_for(("/", f"{SITE}.logs:app")) as client:
            assert (await client.get("/")).text == "done"
            assert (await client.get("/traceback-id")).text == "logged"
            assert (await client.get("/unhandled")).status_code == 500
            info = (await client.get("/utility")).json()
    messages = [r.getMessage() for r in caplog.records]
    tagged = [m for m in messages if m.startswith("[")]
    assert tagged[0].startswith("[info:GTID-") and tagged[0].endswith("/1000] called index")
    assert tagged[1].startswith("[error:") and tagged[1].endswith("] exception occured")
    assert tagged[2].startswith("[expt:") and tagged[2].endswith("] ZeroDivisionError: in index")
    assert tagged[3].endswith("] done index")
    assert "[expt:my-id] KeyError: 'missing'" in messages
    assert any("not handled: logged by Saddle" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert info == {"status_html": True, "status_json": ["connections", "mounts", "objects", "server",
                                                         "workers"],
                    "json": {"a": 1}, "xml": [1, "two"]}


def test_seed_chapter_apps_import_cleanly() -> None:
    # Each module stands on its own, as the seed's files would.
    from tests.saddle.seedsite import auth, basics, jinja, logs, register, rpcservice, sessions

    for module in (auth, basics, jinja, logs, mbox, register, rpcservice, sessions, upload):
        assert module.app.router.by_name


THREE_APPS = '''
#WSGI App

def app (env, start_response):
  start_response ("200 OK", [("Content-Type", "text/plain")])
  return [b'Hello World']

app.use_reloader = True
app.debug = True


# Flask App*
from flask import Flask
app2 = Flask(__name__)

app2.use_reloader = True
app2.debug = True

@app2.route("/")
def index ():
  return "Hello World"


# Skito-Saddle App
from skitai.saddle import Saddle
app3 = Saddle (__name__)

app3.use_reloader = True
app3.debug = True

@app3.route('/')
def index (was):
  return "Hello World"

if __name__ == "__main__":

  import skitai

  skitai.run (
    mount = [
      ('/', (__file__, 'app')), # mount WSGI app
      ('/flask', (__file__, 'app2')), # mount Flask app
      ('/skitai', (__file__, 'app3')), # mount Skitai app
      ('/', 'STATIC') # mount static directory
    ],
    port = PORT
  )
'''


def test_the_seeds_script_with_three_kinds_of_app(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "logo.txt").write_text("static file")
    port = free_port()
    script = tmp_path / "wsgiapp.py"
    script.write_text(THREE_APPS.replace("STATIC", str(static)).replace("PORT", str(port)))
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
        assert httpx.get(f"{base}/").text == "Hello World"
        assert httpx.get(f"{base}/flask/").text == "Hello World"
        assert httpx.get(f"{base}/skitai/").text == "Hello World"
        assert httpx.get(f"{base}/skitai").status_code == 301
        assert httpx.get(f"{base}/logo.txt").text == "static file"
    finally:
        stop(process)
        assert process.stderr is not None
        process.stderr.close()

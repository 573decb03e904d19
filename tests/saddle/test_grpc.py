"""gRPC serving with the real grpcio client: the four call kinds, async handlers, deadlines,
compression, status codes, TLS, hooks and authentication; and, from a raw h2 client, hostile
frames and the compressed responses grpcio would decompress without a word."""

from __future__ import annotations

import base64
import gzip
import importlib
import logging
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import anyio
import grpc
import pytest
import trustme
from grpc_tools import protoc

from skitai.saddle import GrpcError, GrpcStatus, Saddle
from tests.support.h2peer import H2Peer
from tests.support.servers import Served, serving

SITE = Path(__file__).with_name("grpcsite")
SERVICE = "/routeguide.RouteGuide"


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """routeguide_pb2, generated from grpcsite/routeguide.proto, importable as a top-level module."""
    out = tmp_path_factory.mktemp("grpc")
    assert protoc.main(["protoc", f"-I{SITE}", f"--python_out={out}", f"--grpc_python_out={out}",
                        str(SITE / "routeguide.proto")]) == 0
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("routeguide_pb2")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def app(pb: ModuleType) -> ModuleType:
    return importlib.import_module("tests.saddle.grpcsite.app")


def stub(target: str, **options: Any) -> tuple[grpc.Channel, Any]:
    import routeguide_pb2_grpc  # type: ignore[import-not-found]

    channel = grpc.insecure_channel(target, **options)
    return channel, routeguide_pb2_grpc.RouteGuideStub(channel)


async def call(srv: Served, work: Any, **options: Any) -> Any:
    """Run `work(stub)` with a blocking grpcio client in a worker thread."""
    def run() -> Any:
        channel, guide = stub(f"{srv.host}:{srv.port}", **options)
        with channel:
            return work(guide)

    with anyio.fail_after(30):
        return await anyio.to_thread.run_sync(run)


def status_of(work: Any) -> Any:
    def run(guide: Any) -> tuple[Any, str]:
        try:
            work(guide)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()
        return grpc.StatusCode.OK, ""
    return run


async def test_the_four_call_kinds(app: ModuleType, pb: ModuleType) -> None:
    notes = [pb.RouteNote(location=pb.Point(latitude=i % 2), message=f"n{i}") for i in range(4)]

    def work(guide: Any) -> Any:
        return (
            guide.GetFeature(pb.Point(latitude=3, longitude=-3), timeout=10),
            list(guide.ListFeatures(pb.Rectangle(lo=pb.Point(latitude=2), hi=pb.Point(latitude=5)),
                                    timeout=10)),
            guide.RecordRoute(iter([pb.Point(latitude=i, longitude=-i) for i in (1, 4, 20)]), timeout=10),
            [note.message for note in guide.RouteChat(iter(notes), timeout=10)],
        )

    async with serving(mount=(SERVICE, app.app)) as srv:
        feature, listed, summary, chat = await call(srv, work)
    assert feature.name == "feature 3"
    assert [f.name for f in listed] == [f"feature {i}" for i in range(2, 6)]
    assert (summary.point_count, summary.feature_count, summary.distance) == (3, 2, 19)
    assert chat == ["n0", "n1"]  # each note answered with the earlier ones at its point


async def test_async_handlers(app: ModuleType, pb: ModuleType) -> None:
    def work(guide: Any) -> Any:
        chat = guide.RouteChatAsync(iter([pb.RouteNote(message="a"), pb.RouteNote(message="b")]), timeout=10)
        return (guide.GetFeatureAsync(pb.Point(latitude=1, longitude=-1), timeout=10).name,
                [f.name for f in guide.ListFeaturesAsync(pb.Rectangle(hi=pb.Point(latitude=1)), timeout=10)],
                [note.message for note in chat])

    async with serving(mount=(SERVICE, app.app)) as srv:
        assert await call(srv, work) == ("feature 1", ["feature 0", "feature 1"], ["A", "B"])


async def test_deadlines_end_the_call(app: ModuleType, pb: ModuleType) -> None:
    app.slow_cancelled.clear()
    async with serving(mount=(SERVICE, app.app)) as srv:
        threaded = await call(srv, status_of(lambda g: g.Slow(pb.Point(latitude=3000), timeout=0.2)))
        looped = await call(srv, status_of(lambda g: g.SlowAsync(pb.Point(latitude=30000), timeout=0.2)))
        fast = await call(srv, status_of(lambda g: g.Slow(pb.Point(latitude=1), timeout=10)))
    assert threaded[0] == looped[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert app.slow_cancelled.is_set(), "the async handler was not cancelled"
    assert fast[0] == grpc.StatusCode.OK


async def test_errors_become_status_codes(app: ModuleType, pb: ModuleType) -> None:
    async with serving(mount=(SERVICE, app.app)) as srv:
        chosen = await call(srv, status_of(lambda g: g.Fail(pb.Point(latitude=1), timeout=10)))
        crashed = await call(srv, status_of(lambda g: g.Fail(pb.Point(latitude=2), timeout=10)))
        unrouted = await call(srv, status_of(lambda g: g.Unrouted(pb.Point(), timeout=10)))
    assert chosen == (grpc.StatusCode.NOT_FOUND, "nothing at 1")
    assert crashed == (grpc.StatusCode.UNKNOWN, "handler failed")
    assert unrouted[0] == grpc.StatusCode.UNIMPLEMENTED


async def test_compressed_messages_both_ways(app: ModuleType, pb: ModuleType) -> None:
    notes = [pb.RouteNote(location=pb.Point(latitude=1), message="x" * 5000) for _ in range(3)]

    def work(guide: Any) -> Any:
        return [len(n.message) for n in guide.RouteChat(iter(notes), timeout=10,
                                                        compression=grpc.Compression.Gzip)]

    async with serving(mount=(SERVICE, app.app)) as srv:
        assert await call(srv, work) == [5000, 5000, 5000]


async def test_over_tls(app: ModuleType, pb: ModuleType, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    import routeguide_pb2_grpc

    def work(port: int) -> str:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
            guide = routeguide_pb2_grpc.RouteGuideStub(channel)
            return str(guide.GetFeature(pb.Point(latitude=2, longitude=-2), timeout=10).name)

    async with serving(mount=(SERVICE, app.app), certfile=str(certfile), keyfile=str(keyfile)) as srv:
        with anyio.fail_after(30):
            assert await anyio.to_thread.run_sync(work, srv.port) == "feature 2"


async def test_the_acceptance_probe(tmp_path: Path) -> None:
    """The acceptance probe's service, acceptance.Echo/Say, compiled here: it answers a call
    through the generated stub and a generic call that sends and receives raw serialized bytes."""
    proto = tmp_path / "echo.proto"
    proto.write_text('syntax = "proto3"; package acceptance; message Msg { string text = 1; }\n'
                     "service Echo { rpc Say (Msg) returns (Msg); }\n")
    assert protoc.main(["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}",
                        f"--grpc_python_out={tmp_path}", str(proto)]) == 0
    sys.path.insert(0, str(tmp_path))
    try:
        echo_pb2 = importlib.import_module("echo_pb2")
        echo_pb2_grpc = importlib.import_module("echo_pb2_grpc")
    finally:
        sys.path.remove(str(tmp_path))
    echo = Saddle(__name__)

    @echo.route("/Say")
    def say(was: Any, msg: Any) -> Any:
        return echo_pb2.Msg(text=f"echo: {msg.text}")

    async with serving(mount=("/acceptance.Echo", echo)) as srv:
        def work() -> tuple[str, bytes]:
            with grpc.insecure_channel(f"{srv.host}:{srv.port}") as channel:
                by_stub = echo_pb2_grpc.EchoStub(channel).Say(echo_pb2.Msg(text="hello grpc"), timeout=10)
                raw = channel.unary_unary("/acceptance.Echo/Say")  # no (de)serializer: bytes both ways
                return by_stub.text, raw(echo_pb2.Msg(text="raw bytes").SerializeToString(), timeout=10)

        with anyio.fail_after(30):
            by_stub, by_bytes = await anyio.to_thread.run_sync(work)
    assert by_stub == "echo: hello grpc"
    assert by_bytes == echo_pb2.Msg(text="echo: raw bytes").SerializeToString()


def hooked_app(pb: ModuleType, calls: list[str]) -> Saddle:
    """GetFeature (a worker thread) and GetFeatureAsync (the event loop) inside every request hook.

    before_request answers latitude 7 itself and refuses latitude 8 with a GrpcError; the
    handlers break at latitude 9.
    """
    hooked = Saddle(__name__)

    @hooked.before_request
    def before(was):
        point = was.request.args["point"]
        calls.append(f"before {point.latitude}")
        if point.latitude == 7:
            return pb.Feature(name="answered by before_request", location=point)
        if point.latitude == 8:
            raise GrpcError(GrpcStatus.FAILED_PRECONDITION, "refused by before_request")
        was.g.seen = point.latitude
        return None

    @hooked.finish_request
    def finish(was):
        calls.append("finish")

    @hooked.failed_request
    def failed(was, exc_info):
        calls.append(f"failed {exc_info[0].__name__}")

    @hooked.teardown_request
    def teardown(was):
        calls.append("teardown")

    @hooked.route("/GetFeature")
    def get_feature(was, point):
        calls.append("handler")
        if point.latitude == 9:
            raise ValueError("the handler broke")
        return pb.Feature(name=f"seen {was.g.seen}", location=point)

    @hooked.route("/GetFeatureAsync")
    async def get_feature_async(was, point):
        calls.append("handler")
        if point.latitude == 9:
            raise ValueError("the handler broke")
        return pb.Feature(name=f"seen {was.g.seen}", location=point)

    return hooked


@pytest.mark.parametrize("method", ["GetFeature", "GetFeatureAsync"])
async def test_request_hooks_apply_to_grpc_routes(pb: ModuleType, method: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The app's hooks run around a gRPC handler in the usual order; a before_request result is
    the response message, and a GrpcError it raises ends the call with its status. Each call
    that does not end OK is one log line: a warning for a chosen status, an error with the
    traceback for a crash."""
    calls: list[str] = []

    def ask(latitude: int) -> Any:
        return status_of(lambda g: getattr(g, method)(pb.Point(latitude=latitude), timeout=10))

    def named(latitude: int) -> Any:
        return lambda g: getattr(g, method)(pb.Point(latitude=latitude), timeout=10).name

    async with serving(mount=(SERVICE, hooked_app(pb, calls))) as srv:
        assert await call(srv, named(3)) == "seen 3"
        assert calls == ["before 3", "handler", "finish", "teardown"]
        calls.clear()
        assert await call(srv, named(7)) == "answered by before_request"
        assert calls == ["before 7", "teardown"]
        calls.clear()
        with caplog.at_level(logging.INFO, "skitai.app"):
            assert await call(srv, ask(8)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                               "refused by before_request")
        assert calls == ["before 8", "failed GrpcError", "teardown"]
        logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("skitai.app")]
        assert logged == [(logging.WARNING,
                           f"gRPC {SERVICE}/{method}: FAILED_PRECONDITION refused by before_request")]
        calls.clear()
        caplog.clear()
        with caplog.at_level(logging.INFO, "skitai.app"):
            assert await call(srv, ask(9)) == (grpc.StatusCode.UNKNOWN, "handler failed")
        assert calls == ["before 9", "handler", "failed ValueError", "teardown"]
        crashes = [r for r in caplog.records if r.name.startswith("skitai.app")]
        assert len(crashes) == 1 and crashes[0].levelno == logging.ERROR
        assert crashes[0].exc_info is not None and str(crashes[0].exc_info[1]) == "the handler broke"


def guarded_app(pb: ModuleType, calls: list[str], *, realm: str | None) -> Saddle:
    guarded = Saddle(__name__)
    guarded.authorization = "basic"
    guarded.realm = realm
    guarded.users = {"app": "iamyourpartnerapp"}

    @guarded.route("/GetFeature", authenticate=True)
    def get_feature(was, point):
        calls.append(was.request.user.name)
        return pb.Feature(name=f"for {was.request.user.name}", location=point)

    return guarded


def basic(user: str, password: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()),)


async def test_authentication_on_a_grpc_route(pb: ModuleType) -> None:
    """`route(authenticate=True)`: credentials in the `authorization` metadata are checked before
    the handler runs; none or wrong ones end the call UNAUTHENTICATED."""
    calls: list[str] = []

    def get(metadata: Any = ()) -> Any:
        return status_of(lambda g: g.GetFeature(pb.Point(latitude=1), timeout=10, metadata=metadata))

    async with serving(mount=(SERVICE, guarded_app(pb, calls, realm="gRPC area"))) as srv:
        anonymous = await call(srv, get())
        wrong = await call(srv, get(basic("app", "nope")))
        name = await call(srv, lambda g: g.GetFeature(pb.Point(latitude=1), timeout=10,
                                                      metadata=basic("app", "iamyourpartnerapp")).name)
    assert anonymous[0] == wrong[0] == grpc.StatusCode.UNAUTHENTICATED
    assert name == "for app"
    assert calls == ["app"]  # the refused calls never reached the handler


async def test_authentication_without_a_realm_refuses_every_grpc_call(pb: ModuleType) -> None:
    """Authentication fails closed: with no realm configured even good credentials get
    PERMISSION_DENIED."""
    calls: list[str] = []
    async with serving(mount=(SERVICE, guarded_app(pb, calls, realm=None))) as srv:
        anonymous = await call(srv, status_of(lambda g: g.GetFeature(pb.Point(), timeout=10)))
        credited = await call(srv, status_of(lambda g: g.GetFeature(
            pb.Point(), timeout=10, metadata=basic("app", "iamyourpartnerapp"))))
    assert anonymous[0] == credited[0] == grpc.StatusCode.PERMISSION_DENIED
    assert calls == []


# ------------------------------------------------------------------ hostile frames


def message(data: bytes, flag: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">BI", flag, len(data) if length is None else length) + data


GRPC_HEADERS = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]


def messages(data: bytes) -> list[tuple[int, bytes]]:
    """(compressed flag, bytes) of each length-prefixed message in a response body."""
    found = []
    while data:
        flag, length = struct.unpack(">BI", data[:5])
        assert len(data) >= 5 + length, "a message cut short"
        found.append((flag, data[5:5 + length]))
        data = data[5 + length:]
    return found


async def raw_call(srv: Served, body: bytes, headers: list[tuple[bytes, bytes]] = GRPC_HEADERS,
                   method: str = "GetFeature") -> Any:
    peer = await (await H2Peer.connect(srv.host, srv.port)).start()
    try:
        sid = await peer.request(b"POST", f"{SERVICE}/{method}".encode(), headers, body=body)
        return await peer.response(sid)
    finally:
        await peer.aclose()


@pytest.mark.parametrize(("what", "body", "extra", "status"), [
    ("a message cut short", message(b"\x08\x01", length=100), [], 13),
    ("a prefix cut short", b"\x00\x00\x00", [], 13),
    ("a compressed flag without grpc-encoding", message(zlib.compress(b"\x08\x01"), flag=1), [], 13),
    ("an invalid compressed flag", message(b"\x08\x01", flag=7), [], 13),
    ("a message over the size limit", message(b"", length=1 << 30), [], 8),
    ("bytes that are no protobuf", message(b"\xff\xff\xff"), [], 13),
    ("two messages to a unary method", message(b"\x08\x01") * 2, [], 13),
    ("no message", b"", [], 13),
    ("an unknown grpc-encoding", message(b"\x08\x01"), [(b"grpc-encoding", b"snappy")], 12),
    ("a malformed grpc-timeout", message(b"\x08\x01"), [(b"grpc-timeout", b"soon")], 3),
    ("a gzip bomb", message(zlib.compress(b"\0" * (8 << 20)), flag=1), [(b"grpc-encoding", b"deflate")], 8),
])
async def test_hostile_calls_get_a_status(app: ModuleType, what: str, body: bytes,
                                          extra: list[tuple[bytes, bytes]], status: int,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """Each ends with its status, and one warning naming the call, the status and the reason."""
    async with serving(mount=(SERVICE, app.app)) as srv:
        with caplog.at_level(logging.INFO, "skitai.app"):
            result = await raw_call(srv, body, [*GRPC_HEADERS, *extra])
            after = await raw_call(srv, message(b"\x08\x02\x10\x03"))  # the server goes on
    assert result.status == 200 and result.trailers is not None, what
    trailers = dict(result.trailers)
    assert trailers[b"grpc-status"] == str(status).encode(), (what, result.trailers)
    assert dict(after.trailers or [])[b"grpc-status"] == b"0"
    reason = unquote(trailers[b"grpc-message"].decode())
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("skitai.app")]
    expected = f"gRPC {SERVICE}/GetFeature: {GrpcStatus(status).name} {reason}"
    assert logged == [(logging.WARNING, expected)], what


async def test_responses_are_compressed_when_the_client_asks(app: ModuleType, pb: ModuleType) -> None:
    """A client that compresses with gzip and accepts gzip gets `grpc-encoding: gzip` and gzip
    messages with the compressed flag set, from 1 KiB up; one that does not accept it gets plain
    messages. grpcio would decompress without a word: a raw h2 client sees the bytes."""
    big = pb.RouteNote(location=pb.Point(latitude=1), message="x" * 5000)
    small = pb.RouteNote(location=pb.Point(latitude=2), message="s")
    # RouteChat answers each note with the earlier ones at its point: big, then small.
    body = b"".join(message(gzip.compress(n.SerializeToString()), flag=1) for n in (big, big, small, small))
    sent = [*GRPC_HEADERS, (b"grpc-encoding", b"gzip")]
    async with serving(mount=(SERVICE, app.app)) as srv:
        packed = await raw_call(srv, body, [*sent, (b"grpc-accept-encoding", b"identity,gzip")], "RouteChat")
        plain = await raw_call(srv, body, [*sent, (b"grpc-accept-encoding", b"identity")], "RouteChat")
    for result in (packed, plain):
        assert result.status == 200 and dict(result.trailers or [])[b"grpc-status"] == b"0"
    assert packed.header(b"grpc-encoding") == b"gzip"
    (big_flag, big_bytes), (small_flag, small_bytes) = messages(bytes(packed.data))
    assert big_flag == 1 and len(big_bytes) < 1000
    assert gzip.decompress(big_bytes) == big.SerializeToString()
    assert (small_flag, small_bytes) == (0, small.SerializeToString())  # under 1 KiB: not worth it
    assert plain.header(b"grpc-encoding") is None
    assert messages(bytes(plain.data)) == [(0, big.SerializeToString()), (0, small.SerializeToString())]


@pytest.mark.parametrize("method", [b"Slow", b"SlowAsync"])
async def test_the_server_keeps_the_deadline_itself(app: ModuleType, method: bytes) -> None:
    """grpcio also gives up at its deadline; a raw client that waits shows the server's answer."""
    app.slow_cancelled.clear()
    async with serving(mount=(SERVICE, app.app)) as srv:
        peer = await (await H2Peer.connect(srv.host, srv.port)).start()
        sid = await peer.request(b"POST", SERVICE.encode() + b"/" + method,
                                 [*GRPC_HEADERS, (b"grpc-timeout", b"100m")],
                                 body=message(b"\x08\xa8\x46"))  # latitude 9000: 9 s of work
        result = await peer.response(sid, within=6)  # far past the deadline, far before the work ends
        await peer.aclose()
    assert result.trailers is not None
    assert dict(result.trailers)[b"grpc-status"] == b"4"  # DEADLINE_EXCEEDED
    if method == b"SlowAsync":
        assert app.slow_cancelled.is_set()


async def test_grpc_over_http11_is_refused(app: ModuleType) -> None:
    import httpx

    async with serving(mount=(SERVICE, app.app)) as srv, httpx.AsyncClient() as client:
        response = await client.post(f"{srv.url}{SERVICE}/GetFeature", content=message(b""),
                                     headers={"content-type": "application/grpc"})
    assert response.status_code == 505



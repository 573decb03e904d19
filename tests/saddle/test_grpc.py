"""gRPC serving with the real grpcio client: the four call kinds, async handlers, deadlines,
compression, status codes, TLS; and hostile frames from a raw h2 client."""

from __future__ import annotations

import importlib
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import grpc
import pytest
import trustme
from grpc_tools import protoc

from skitai.saddle import Saddle
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
    """../shared/acceptance/grpc_probe.py's service: acceptance.Echo/Say, stub and raw bytes."""
    proto = tmp_path / "echo.proto"
    proto.write_text('syntax = "proto3"; package acceptance; message Msg { string text = 1; }\n'
                     "service Echo { rpc Say (Msg) returns (Msg); }\n")
    assert protoc.main(["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}", str(proto)]) == 0
    sys.path.insert(0, str(tmp_path))
    try:
        echo_pb2 = importlib.import_module("echo_pb2")
    finally:
        sys.path.remove(str(tmp_path))
    echo = Saddle(__name__)

    @echo.route("/Say")
    def say(was: Any, msg: Any) -> Any:
        return msg

    async with serving(mount=("/acceptance.Echo", echo)) as srv:
        def work() -> Any:
            with grpc.insecure_channel(f"{srv.host}:{srv.port}") as channel:
                raw = channel.unary_unary("/acceptance.Echo/Say")
                payload = echo_pb2.Msg(text="raw bytes").SerializeToString()
                return raw(payload, timeout=10) == payload

        with anyio.fail_after(30):
            assert await anyio.to_thread.run_sync(work)


# ------------------------------------------------------------------ hostile frames


def message(data: bytes, flag: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">BI", flag, len(data) if length is None else length) + data


GRPC_HEADERS = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]


async def raw_call(srv: Served, body: bytes, headers: list[tuple[bytes, bytes]] = GRPC_HEADERS) -> Any:
    peer = await (await H2Peer.connect(srv.host, srv.port)).start()
    try:
        sid = await peer.request(b"POST", f"{SERVICE}/GetFeature".encode(), headers, body=body)
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
                                          extra: list[tuple[bytes, bytes]], status: int) -> None:
    async with serving(mount=(SERVICE, app.app)) as srv:
        result = await raw_call(srv, body, [*GRPC_HEADERS, *extra])
        after = await raw_call(srv, message(b"\x08\x02\x10\x03"))  # the server goes on
    assert result.status == 200 and result.trailers is not None, what
    assert dict(result.trailers)[b"grpc-status"] == str(status).encode(), (what, result.trailers)
    assert dict(after.trailers or [])[b"grpc-status"] == b"0"


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



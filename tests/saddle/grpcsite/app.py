"""The route guide as a Saddle app, in the seed's style: mount it at /routeguide.RouteGuide.

`routeguide_pb2` is generated from routeguide.proto by the test fixture
(grpc_tools.protoc) before this module is imported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import routeguide_pb2 as pb  # type: ignore[import-not-found]

from skitai.saddle import GrpcError, Saddle
from skitai.saddle import GrpcStatus as Status

app = Saddle(__name__)
FEATURES = [pb.Feature(name=f"feature {i}", location=pb.Point(latitude=i, longitude=-i)) for i in range(10)]
slow_cancelled = threading.Event()  # SlowAsync saw its deadline


def find(point: Any) -> Any:
    for feature in FEATURES:
        if feature.location == point:
            return feature
    return pb.Feature(name="", location=point)


def inside(rect: Any) -> Iterator[Any]:
    for feature in FEATURES:
        if rect.lo.latitude <= feature.location.latitude <= rect.hi.latitude:
            yield feature


@app.route("/GetFeature")
def GetFeature(was, point):
    return find(point)


@app.route("/ListFeatures")
def ListFeatures(was, rectangle):
    yield from inside(rectangle)


@app.route("/RecordRoute")
def RecordRoute(was, points: Iterable[Any]):
    count = features = distance = 0
    previous = None
    for point in points:
        count += 1
        features += bool(find(point).name)
        if previous is not None:
            distance += abs(point.latitude - previous.latitude)
        previous = point
    return pb.RouteSummary(point_count=count, feature_count=features, distance=distance)


@app.route("/RouteChat")
def RouteChat(was, notes: Iterable[Any]):
    seen: list[Any] = []
    for note in notes:
        for earlier in seen:
            if earlier.location == note.location:
                yield earlier
        seen.append(note)


@app.route("/GetFeatureAsync")
async def GetFeatureAsync(was, point):
    await anyio.lowlevel.checkpoint()
    return find(point)


@app.route("/ListFeaturesAsync")
async def ListFeaturesAsync(was, rectangle) -> AsyncIterator[Any]:
    for feature in inside(rectangle):
        await anyio.lowlevel.checkpoint()
        yield feature


@app.route("/RouteChatAsync")
async def RouteChatAsync(was, notes) -> AsyncIterator[Any]:
    async for note in notes:
        yield pb.RouteNote(location=note.location, message=note.message.upper())


@app.route("/Slow")
def Slow(was, point):
    time.sleep(point.latitude / 1000)
    return find(point)


@app.route("/SlowAsync")
async def SlowAsync(was, point):
    try:
        await anyio.sleep(point.latitude / 1000)
    except anyio.get_cancelled_exc_class():
        slow_cancelled.set()
        raise
    return find(point)


@app.route("/Fail")
def Fail(was, point):
    if point.latitude == 1:
        raise GrpcError(Status.NOT_FOUND, f"nothing at {point.latitude}")
    raise ValueError("the handler broke")

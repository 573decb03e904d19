"""Test an app (Saddle, Flask, any WSGI app) against a real Skitai server in the test's process.

The server listens on a free port of 127.0.0.1; the client is an httpx
client (`pip install skitai[testing]`) whose base URL is that server, with
a cookie jar kept across its requests. `http2=True` speaks HTTP/2 (h2c by
prior knowledge) instead of HTTP/1.1. Other keyword arguments are
`skitai.Config` options (`threads=2`, `grace=1`...).

In an async test (pytest with anyio's plugin), on the test's event loop:

    async def test_hello():
        async with serve_app(app) as client:
            response = await client.get("/hello")
            assert response.text == "Hello"

In a plain test, with the server on an event loop in a thread of its own:

    def test_hello():
        with TestClient(app) as client:
            assert client.get("/hello").text == "Hello"

`mount=` takes the seed's mount list instead of one app at "/".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.from_thread
import httpx

from skitai.config import Config
from skitai.runner import serve

HOST = "127.0.0.1"


def _config(app: Any, mount: Any, options: dict[str, Any]) -> Config:
    if (app is None) == (mount is None):
        raise TypeError("give an app or a mount list, not both")
    return Config.from_options({"address": HOST, "port": 0, "mount": mount or ("/", app), **options})


@asynccontextmanager
async def _serving(config: Config) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        addresses = await tg.start(serve, config)
        host, port = addresses[0]
        try:
            yield f"http://{host}:{port}"
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def serve_app(
    app: Any = None, *, mount: Any = None, http2: bool = False, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Serve `app` at "/" (or `mount`) while the block runs; yields a client for it."""
    async with _serving(_config(app, mount, options)) as url:
        # Made in a thread: an httpx client reads certificate files when it is created.
        client = await anyio.to_thread.run_sync(
            lambda: httpx.AsyncClient(base_url=url, http1=not http2, http2=http2))
        async with client:
            yield client


class TestClient(AbstractContextManager[httpx.Client]):
    """`with TestClient(app) as client:` serves `app` on a thread's event loop for plain tests."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self, app: Any = None, *, mount: Any = None, http2: bool = False, backend: str = "asyncio",
        **options: Any,
    ) -> None:
        self._config = _config(app, mount, options)
        self._http2 = http2
        self._backend = backend
        self._stack = ExitStack()

    def __enter__(self) -> httpx.Client:
        with self._stack as stack:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal(self._backend))
            url = stack.enter_context(portal.wrap_async_context_manager(_serving(self._config)))
            client = stack.enter_context(httpx.Client(base_url=url, http1=not self._http2,
                                                      http2=self._http2))
            self._stack = stack.pop_all()  # kept open until __exit__
        return client

    def __exit__(self, *exc_info: Any) -> None:
        self._stack.close()

"""Shared fixtures: both anyio backends, a blocking-call detector, leak checks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["anyio"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on both backends, named so a missing trio fails loudly."""
    return str(request.param)


@pytest.fixture(autouse=True)
def no_blocking_calls(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail when Skitai's own code blocks the asyncio event loop.

    blockbuster watches calls made from `skitai` modules while a loop runs;
    it only knows asyncio, so trio runs are covered by the asyncio twin.
    """
    if "anyio_backend" not in request.fixturenames or os.environ.get("SKITAI_NO_BLOCKBUSTER"):
        yield
        return
    from blockbuster import BlockBuster

    buster = BlockBuster(scanned_modules=["skitai"])
    buster.activate()
    try:
        yield
    finally:
        buster.deactivate()

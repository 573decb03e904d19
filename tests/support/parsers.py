"""Run a test directory's tests once per HTTP/1.1 parser (conftest imports this fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import HTTP_PARSER

PARSERS = ["h11", "httptools"]


@pytest.fixture(params=PARSERS, autouse=True)
def http_parser(request: pytest.FixtureRequest) -> Iterator[str]:
    HTTP_PARSER["name"] = request.param
    try:
        yield request.param
    finally:
        HTTP_PARSER["name"] = "auto"

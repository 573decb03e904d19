from tests.support.parsers import http_parser  # noqa: F401 - both HTTP/1.1 parsers

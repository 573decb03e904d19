"""Saddle: a small Flask-like framework served by Skitai (the seed's "Skito-Saddle").

    from skitai.saddle import Saddle

    app = Saddle(__name__)

    @app.route("/hello/<name>")
    def hello(was, name="Hans Roh"):
        return f"Hello, {name}"

See docs/reference/saddle.md.
"""

from skitai.saddle import form_parser, http_auth, session_service
from skitai.saddle.app import AppConfig, Saddle
from skitai.saddle.errors import HTTPError
from skitai.saddle.grpc_wire import GrpcError
from skitai.saddle.grpc_wire import Status as GrpcStatus
from skitai.saddle.part import Saddlery
from skitai.saddle.routing import BuildError

# What Saddle apps get without asking: multipart forms as handler arguments,
# Digest and Basic authentication, was.session and was.mbox.
form_parser.install()
http_auth.install()
session_service.install()

__all__ = ["AppConfig", "BuildError", "GrpcError", "GrpcStatus", "HTTPError", "Saddle", "Saddlery"]

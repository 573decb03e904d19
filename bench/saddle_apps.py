"""The same hello three ways, for bench/saddle.sh: raw WSGI, Saddle, Flask.

Each answers `GET /` with the 11 bytes "Hello World". The Saddle app goes
through its whole stack: route lookup, a per-request `was`, a
before_request and a teardown_request hook, the return value made a body.
"""

from flask import Flask

from skitai.saddle import Saddle

HELLO = b"Hello World"


def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]


saddle_app = Saddle(__name__)


@saddle_app.before_request
def before_request(was):
    return None


@saddle_app.teardown_request
def teardown_request(was):
    return None


@saddle_app.route("/")
def index(was):
    return "Hello World"


flask_app = Flask(__name__)


@flask_app.route("/")
def flask_index():
    return "Hello World"

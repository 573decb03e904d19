"""WWW-Authenticate: routes needing authentication. Until an authenticator is
installed (skitai.saddle.plugins.AUTHENTICATORS), they are refused, never open."""

from skitai.saddle import Saddle

app = Saddle(__name__)

app.authorization = "digest"
app.authenticate = True
app.realm = "Partner App Area of mysite.com"
app.users = {"app": ("iamyourpartnerapp", 0, {'role': 'root'})}


@app.route("/hello/<name>")
def hello(was, name="Hans Roh"):
    return "Hello, %s" % name  # noqa: UP031


route_app = Saddle(__name__)


@route_app.route("/hello/<name>", authenticate=True)
def guarded_hello(was, name="Hans Roh"):
    return "Hello, %s" % name  # noqa: UP031


@route_app.route("/open")
def open_page(was):
    return "open"

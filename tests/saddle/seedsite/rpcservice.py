"""Implementing XMLRPC Service (mounted at /rpc)."""

from skitai.saddle import Saddle

app = Saddle(__name__)


@app.route("/add")
def index(was, num1, num2):
    return num1 + num2

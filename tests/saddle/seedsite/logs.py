"""Logging and Traceback; the utility services of `was`."""

from skitai import was
from skitai.saddle import Saddle

app = Saddle(__name__)


@app.route("/")
def sum():
    was.log("called index", "info")
    try:
        raise ZeroDivisionError("in index")
    except ZeroDivisionError:
        was.log("exception occured", "error")
        was.traceback()
    was.log("done index", "info")
    return "done"


@app.route("/traceback-id")
def with_id(was):
    try:
        {}["missing"]
    except KeyError:
        was.traceback("my-id")
    return "logged"


@app.route("/unhandled")
def unhandled(was):
    raise RuntimeError("not handled: logged by Saddle")


@app.route("/utility")
def utility(was):
    return {
        "status_html": was.status().startswith("<!DOCTYPE html>"),
        "status_json": sorted(was.status(fancy=False)),
        "json": was.fromjson(was.tojson({"a": 1})),
        "xml": was.fromxml(was.toxml([1, "two"])),
    }

"""Access Saddle App, Debugging, Routing, Access Request, Response, URL and form parameters,
Building URL, Access Environment Variables (mounted at /math, as "Building URL" assumes)."""

import os
import sys

from skitai.saddle import Saddle

app = Saddle(__name__)
app.debug = True  # output exception information
app.use_reloader = True  # auto realod on file changed
app.config.my_setting = 1

HERE = os.path.dirname(__file__)


@app.route("/config")
def config(was):
    return "%s %s %s %s %s" % (  # noqa: UP031
        was.app.config.max_post_body_size, was.app.config.max_cache_size,
        was.app.config.max_multipart_body_size, was.app.config.max_upload_file_size,
        was.app.config.my_setting,
    )


@app.route("/hello")
def hello_world(was):
    return was.render("hello.htm")


@app.route("/restricted", methods=["GET"], content_types=["text/xml"])
def restricted(was):
    return was.render("hello.htm")


@app.route("/request")
def request(was):
    r = was.request
    return {
        "command": r.command, "version": r.version, "uri": r.uri, "args": r.args,
        "split_uri": r.split_uri(), "content_type_header": r.get_header("content-type"),
        "headers": len(r.get_headers()) > 0, "body": r.get_body().decode(), "scheme": r.get_scheme(),
        "remote_addr": r.get_remote_addr(), "user_agent": r.get_user_agent(),
        "content_type": r.get_content_type(), "main_type": r.get_main_type(),
        "sub_type": r.get_sub_type(),
    }


@app.route("/hello1")
def hello1(was):
    return was.response("200 OK", was.render("hello.htm"), [("Cache-Control", "max-age=60")])


@app.route("/hello2")
def hello2(was):
    return was.response(body=was.render("hello.htm"), headers=[("Cache-Control", "max-age=60")])


@app.route("/hello3")
def hello3(was):
    was.response.set_header("Cache-Control", "max-age=60")
    return was.render("hello.htm")


@app.route("/err404")
def hello404(was):
    return was.response("404 Not Found", was.render("err404.htm"))


@app.route("/default404")
def default404(was):
    # if body is not given, automaticcally generated with default error template.
    return was.response("404 Not Found")


# File
@app.route("/raise_exception")
def raise_exception(was):
    try:
        raise ValueError("Test Error")
    except ValueError:
        return was.response("500 Internal Server Error", exc_info=sys.exc_info())


# File
@app.route("/streaming")
def streaming(was):
    return was.response("200 OK", open(os.path.join(HERE, "mypicnic.mp4"), "rb"),
                        headers=[("Content-Type", "video/mp4")])


def iter_all_rows():
    return [["a", "b"], ["c", "d"]]


# Generator
@app.route("/csv")
def build_csv(was):
    def generate():
        for row in iter_all_rows():
            yield ",".join(row) + "\n"
    return was.response("200 OK", generate(), headers=[("Content-Type", "text/csv")])


@app.route("/params")
def params_world(was, num=8):
    return num
# http://127.0.0.1:5000/hello?num=100


@app.route("/params/<int:num>")
def params_num(was, num=8):
    return str(num)
    # http://127.0.0.1:5000/hello/100


@app.route("/args")
def args(was, **kw):
    num = was.request.args.get("num", 0)
    return str(num)


@app.route("/download/<int:major_ver>/<path>")
def download(was, major_ver, path):
    return f"{major_ver} {path}"


@app.route("/form")
def form(was, **form):
    return "Post %s %s" % (form.get("userid", ""), form.get("comment", ""))  # noqa: UP031


@app.route("/form2")
def form2(was, userid, **form):
    return "Post %s %s" % (userid, form.get("comment", ""))  # noqa: UP031


@app.route("/add")
def add(was, num1, num2):
    return int(num1) + int(num2)


@app.route("/urls")
def urls(was):
    return "\n".join([
        was.app.build_url("add", 10, 40),  # returned '/math/add?num1=10&num2=40'
        was.ab("add", 10, 40),  # returned '/math/add?num1=10&num2=40'
        was.ab("add", 10, num2=60),  # returned '/math/add?num1=10&num2=60'
        was.ab("hello", "Your Name"),  # returned '/math/hello/Your_Name'
    ])


@app.route("/hello/<name>")
def hello(was, name="Hans Roh"):
    return "Hello, %s" % name  # noqa: UP031


@app.route("/env")
def env(was):
    if "HTTP_USER_AGENT" in was.env:
        return f"{was.env['HTTP_USER_AGENT']} {was.env.get('CONTENT_TYPE')}"
    return "no agent"


@app.route("/promise")
def promise(was):
    was.response.hint_promise("/images/A.png")
    was.response.hint_promise("/images/B.png")
    return was.response("200 OK", 'Promise Sent<br><br><img src="/images/A.png"><img src="/images/B.png">')

from skitai.saddle import Saddle

from . import admin, members

app = Saddle(__name__)
app.debug = True
app.use_reloader = True
app.mount("/admin", admin, "part")
app.mount("/members", members, "part")


@app.before_request
def before_request(was):
    admin.TRACE.append("app.before_request")


@app.finish_request
def finish_request(was):
    admin.TRACE.append("app.finish_request")


@app.failed_request
def failed_request(was, exc_info):
    admin.TRACE.append("app.failed_request")


@app.teardown_request
def teardown_request(was):
    admin.TRACE.append("app.teardown_request")


@app.route("/")
def index(was, num1, num2):
    return was.ab("hello", "Hans Roh")  # url building


@app.route("/page")
def page_index(was):
    return was.render("app/index.html")

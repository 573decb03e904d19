from skitai.saddle import Saddlery

from . import admin_sub

TRACE: list[str] = []
part = Saddlery()  # mount point
# Saddlery also can have sub Saddlery
part.mount("/admin/sub", admin_sub, "app")


class SNSLoginEngine:
    pass


class FulltextSearcher:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


def login(was):
    return was.request.args.get("login") != "no"


@part.startup
def startup(wasc):
    wasc.register("loginengine", SNSLoginEngine())
    wasc.register("searcher", FulltextSearcher())


@part.shutdown
def shutdown(wasc):
    wasc.searcher.close()

    wasc.unregister("loginengine")
    wasc.unregister("searcher")


@part.before_request
def before_request(was):
    TRACE.append("sub-app.before_request")
    if not login(was):
        return "Not Authorized"
    return None


@part.finish_request
def finish_request(was):
    TRACE.append("sub-app.finish_request")


@part.failed_request
def failed_request(was, exc_info):
    TRACE.append("package.failed_request")


@part.teardown_request
def teardown_request(was):
    TRACE.append("sub-app.teardown_request")


@part.route("/<name>")
def hello(was):
    TRACE.append("hello()")
    if was.request.args.get("fail"):
        raise ValueError("failed on purpose")
    # can build other module's method url
    return was.ab("index", 1, 2)


@part.route("/page/<name>")
def page(was, name):
    return was.render("admin/index.html", name=name)

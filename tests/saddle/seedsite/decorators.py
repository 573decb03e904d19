"""App and Method Decorators and was.g; wasc and registered objects (mounted at /members)."""

from skitai.saddle import Saddle

app = Saddle(__name__)
TRACE: list[str] = []


def login(was):
    return was.request.args.get("login") != "no"


class Resource:
    def close(self):
        TRACE.append("resource closed")


@app.before_request
def before_request(was):
    TRACE.append("before_request")
    if not login(was):
        return "Not Authorized"
    return None


@app.finish_request
def finish_request(was):
    # the seed reads was.g.user_id here; "/" below sets none
    TRACE.append(f"finish_request {getattr(was.g, 'user_id', '-')} {getattr(was.g, 'user_status', '-')}")


@app.failed_request
def failed_request(was, exc_info):
    TRACE.append(f"failed_request {exc_info[0].__name__}")
    # releasing resources
    return was.response(
        "501 Server Error",
        was.render("err501.htm", msg="We're sorry but something's going wrong")
    )


@app.teardown_request
def teardown_request(was):
    TRACE.append("teardown_request")
    if hasattr(was.g, "resouce"):
        was.g.resouce.close()


@app.route("/view-account")
def view_account(was, userid):
    was.g.user_id = "jerry"
    was.g.user_status = "active"
    was.g.resouce = Resource()
    if userid == "fail":
        raise ValueError("failed on purpose")
    return f"account of {userid}"


class SNSLoginEngine:
    def __init__(self, logger):
        self.logger = logger
        self.resets = 0

    def get_user_info(self):
        return "user info"

    def check_user_to(self, network):
        return f"checked {network}"

    def reset(self):
        self.resets += 1


class FulltextSearcher:
    def __init__(self, numthreads):
        self.numthreads = numthreads
        self.closed = False

    def query(self, words):
        return f"results for {words}"

    def close(self):
        self.closed = True


REGISTERED: dict[str, object] = {}


@app.startup
def startup(wasc):
    logger = wasc.logger.get("app")
    # OR
    logger = wasc.logger.make_logger("login", "daily")
    config = wasc.config
    wasc.register("loginengine", SNSLoginEngine(logger))
    wasc.register("searcher", FulltextSearcher(wasc.numthreads))
    REGISTERED.update(loginengine=wasc.loginengine, searcher=wasc.searcher, threads=config.threads)


@app.onreload
def onreload(wasc):
    wasc.loginengine.reset()


@app.shutdown
def shutdown(wasc):
    wasc.searcher.close()

    wasc.unregister("loginengine")
    wasc.unregister("searcher")


# app mounted to 'abc.com/members'
@app.route("/")
def index(was):
    return f"{was.loginengine.get_user_info()}, {was.searcher.query('ipad')}"

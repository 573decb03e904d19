"""Access Session, and Named Session & Messaging Box (their session half)."""

from skitai.saddle import Saddle

app = Saddle(__name__)

app.securekey = "ds8fdsflksdjf9879dsf;?<>Asda"
app.session_timeout = 1200  # sec

SECUREKEY_STRING = "another-secret-for-the-ADM-session"


@app.route("/session")
def hello_world(was, **form):
    if "login" not in was.session:
        was.session.set("user_id", form.get("hansroh"))
        # or
        was.session["user_id"] = form.get("hansroh")


@app.route("/methods")
def methods(was):
    # The seed's list of session methods, each called once (its `kyes` and
    # `iterkyes` are spelled `keys` and `iterkeys`).
    was.session.set("a", 1)
    was.session["b"] = [1, 2]
    shown = {
        "get": was.session.get("a"),
        "default": was.session.get("missing", "none"),
        "source_verified": was.session.source_verified(),
        "getv": was.session.getv("a"),
        "keys": sorted(was.session.keys()),
        "values": sorted(map(str, was.session.values())),
        "items": sorted((k, str(v)) for k, v in was.session.items()),
        "has_key": was.session.has_key("a"),
        "iterkeys": sorted(was.session.iterkeys()),
        "itervalues": len(list(was.session.itervalues())),
        "iteritems": len(list(was.session.iteritems())),
    }
    was.session.remove("a")
    shown["after_remove"] = sorted(was.session.keys())
    was.session.clear()
    shown["after_clear"] = len(was.session)
    return shown


@app.route("/show")
def show(was):
    return {"items": dict(was.session.items()), "verified": was.session.source_verified(),
            "getv": was.session.getv("user_id", "not yours")}


@app.route("/")
def index(was):
    was.session.mount("ADM", SECUREKEY_STRING, path='/admin')
    was.session.set("admin_login", True)

    was.mbox.mount("ADM", SECUREKEY_STRING, path='/admin')
    was.mbox.send("10 data has been deleted", 'warning')


@app.route("/shared")
def index_shared(was):
    was.session.mount("ADM", SECUREKEY_STRING, path='/')
    was.session.set("admin_login", True)


@app.route("/admin/")
def admin(was):
    was.session.mount("ADM", SECUREKEY_STRING, path='/admin')
    was.mbox.mount("ADM", SECUREKEY_STRING, path='/admin')
    return {"admin_login": was.session.get("admin_login"),
            "messages": [(category, msg) for _, category, _, _, msg, _ in was.mbox.get()]}


@app.route("/elsewhere")
def elsewhere(was):
    was.session.mount("ADM", SECUREKEY_STRING, path='/')
    return {"admin_login": was.session.get("admin_login")}


@app.route("/check")
def check(was):
    if not was.session.exists(None):
        return "Your session maybe expired or signed out, please sign in again"

    if not was.session.exists("ADM"):
        return "Your admin session maybe expired or signed out, please sign in again"
    return "signed in"


@app.route("/same-as-default")
def same_as_default(was):
    # was.session.mount (None, SECUREKEY_STRING) is the default session; the key must be app.securekey
    was.session.mount(None, app.securekey)
    return {"user_id": was.session.get("user_id")}


@app.route("/check-mounted")
def check_mounted(was):
    # exists() opens a named session with app.securekey: one sealed with its own key is mounted first
    was.session.mount("ADM", SECUREKEY_STRING, path='/')
    return check(was)

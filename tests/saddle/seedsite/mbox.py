"""Messaging Box."""

from skitai.saddle import Saddle

app = Saddle(__name__)
app.securekey = "ds8fdsflksdjf9879dsf;?<>Asda"

NEW_ITEMS = ["an item"]


def has_new_item():
    return bool(NEW_ITEMS) and bool(NEW_ITEMS.pop())


@app.route("/msg")
def msg(was):
    was.mbox.send("This is Flash Message", "flash")
    was.mbox.send("This is Alert Message Kept by 60 seconds on every request", "alram", valid=60)
    return was.redirect(was.ab("showmsg", "Hans Roh"), status="302 Object Moved")


@app.route("/showmsg")
def showmsg(was, name):
    return was.render("msg.htm", name=name)


@app.before_request
def before_request(was):
    if has_new_item():
        was.mbox.send("New Item Arrived", "notice")


@app.route("/main")
def main(was):
    return was.render("news.htm")


@app.route("/notices")
def notices(was):
    return [m[4] + "\n" for m in was.mbox.get("notice")]


@app.route("/api")
def api(was):
    # The seed's list of mbox methods, each called once.
    first = was.mbox.send("first", "info", 0, key="a")
    was.mbox.send("second", "info", 30, key="b")
    was.mbox.send("third", "alert")
    shown = {
        "search_category": was.mbox.search("alert"),
        "search_extra": was.mbox.search("key", "b"),
        "source_verified": was.mbox.source_verified(),
    }
    was.mbox.remove(first)
    shown["by_extra"] = [m[4] for m in was.mbox.get("key", "a")]
    shown["by_category"] = [m[4] for m in was.mbox.get("alert")]
    shown["getv"] = [[m[1], m[3], m[4], m[5]] for m in was.mbox.getv()]
    shown["left"] = [m[4] for m in was.mbox.get()]
    return shown


@app.route("/fail")
def fail(was):
    was.mbox.get()  # consumed only if the page is finished successfully
    raise ValueError("the page failed")

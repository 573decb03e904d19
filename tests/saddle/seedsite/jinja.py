"""Jinja2 Templates Engine."""

from skitai.saddle import Saddle

app = Saddle(__name__)


@app.route("/")
def index(was, choice=2):
    return was.render("index.html", choice=choice, product="Apples")


@app.route("/dict")
def index_dict(was, choice=2):
    # is same with:
    return was.render("index.html", {"choice": choice, "product": "Apples"})


@app.route("/cant")
def cant(was):
    # BUT CAN'T:
    return was.render("index.html", {"choice": 2}, product="Apples")


@app.route("/checkout/<int:choice>")
def checkout(was, choice):
    return f"checkout {choice}"


@app.route("/g")
def with_g(was):
    was.g.product = "Apple"
    was.g.howmany = 10

    return was.render("g.html")


def generate_form_token():
    return "form-token"


@app.route("/token")
def token(was):
    was.app.jinja_env.globals["form_token"] = generate_form_token
    return was.render("token.html")

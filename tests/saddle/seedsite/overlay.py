"""app.jinja_overlay () and the seed's two forms of the same template."""

from skitai.saddle import Saddle

app = Saddle(__name__)
app.debug = True
app.use_reloader = True
app.jinja_overlay(
    line_statement="%",
    variable_string="#",
    block_start_string="{%",
    block_end_string="}"
)

STAT = [
    {"nation": "Korea", "state": "Seoul", "population": 10},
    {"nation": "Korea", "state": "Busan", "population": 3},
    {"nation": "Japan", "state": "Tokyo", "population": 14},
]


@app.route("/")
def dashboard(was):
    return was.render("dashboard.htm", stat=STAT)


@app.route("/original")
def original(was):
    # the original Jinja2 form, rendered by an environment without the overlay
    was.app._original = getattr(was.app, "_original", None) or was.app.jinja_env.overlay(
        variable_start_string="{{", variable_end_string="}}", line_statement_prefix=None,
        line_comment_prefix=None, block_end_string="%}", trim_blocks=False, lstrip_blocks=False)
    return was.app._original.get_template("dashboard_original.htm").render(stat=STAT, was=was)


@app.route("/state/<nation>/<int:index>")
def state_view(was, nation, index):
    return f"{nation} {index}"


bp_state = state_view

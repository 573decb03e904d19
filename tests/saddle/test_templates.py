"""was.render with Jinja2, the seed's overlay syntax, template hooks, render2."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest

from skitai.saddle import Saddle, Saddlery
from tests.saddle.conftest import client_for


def app_in(tmp_path: Path, templates: dict[str, str], name: str = "tplapp") -> Saddle:
    """An app whose module lives in tmp_path, with these templates beside it."""
    module = types.ModuleType(f"{name}_{tmp_path.name}")
    module.__file__ = str(tmp_path / "app.py")
    sys.modules[module.__name__] = module
    (tmp_path / "templates").mkdir(exist_ok=True)
    for file, text in templates.items():
        path = tmp_path / "templates" / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return Saddle(module.__name__)


@pytest.fixture
def cleanup_modules() -> object:
    before = set(sys.modules)
    yield None
    for name in set(sys.modules) - before:
        del sys.modules[name]


async def test_render_with_dict_kwargs_and_was(tmp_path: Path, cleanup_modules: object) -> None:
    app = app_in(tmp_path, {
        "index.html": """\
            {{ was.cookie.username }} choices item {{ was.request.args.get ("choice", "N/A") }}.
            <a href="{{ was.ab ('checkout', choice) }}">Proceed</a> {{ product }}""",
        "g.html": """\
            {% set g = was.g %}Checkout for {{ g.howmany }} {{ g.product }}{{g.howmany > 1 and "s" or ""}}""",
        "form.html": "{{ form_token() }}",
        "escaped.html": "{{ text }}",
    })

    @app.route("/")
    def index(was, choice=2):
        return was.render("index.html", choice=choice, product="Apples")

    @app.route("/dict")
    def as_dict(was, choice=2):
        return was.render("index.html", {"choice": choice, "product": "Apples"})

    @app.route("/both")
    def both(was):
        return was.render("index.html", {"choice": 2}, product="Apples")

    @app.route("/g")
    def with_g(was):
        was.g.product = "Apple"
        was.g.howmany = 10
        return was.render("g.html")

    @app.route("/checkout/<int:choice>")
    def checkout(was, choice):
        return "checkout"

    @app.route("/form")
    def form(was):
        return was.render("form.html")

    @app.route("/escaped")
    def escaped(was):
        return was.render("escaped.html", text="<b>")

    app.jinja_env.globals["form_token"] = lambda: "token-1"

    async with client_for(("/shop", app)) as client:
        expected = 'hans choices item 3.\n<a href="/shop/checkout/3">Proceed</a> Apples'
        cookies = {"Cookie": "username=hans"}
        assert (await client.get("/shop/?choice=3", headers=cookies)).text == expected
        assert (await client.get("/shop/dict?choice=3", headers=cookies)).text == expected
        assert (await client.get("/shop/both")).status_code == 500  # dict and keywords: a clear error
        assert (await client.get("/shop/g")).text == "Checkout for 10 Apples"
        assert (await client.get("/shop/form")).text == "token-1"
        assert (await client.get("/shop/escaped")).text == "&lt;b&gt;"


def test_both_dict_and_keywords_is_a_clear_error(tmp_path: Path, cleanup_modules: object) -> None:
    from skitai.saddle.was import _merge_context

    with pytest.raises(TypeError, match="not both"):
        _merge_context({"a": 1}, {"b": 2})


OVERLAY_LAYOUT = """\
<title>{% block title }{% endblock }</title>
{% block body }{% endblock }
"""

OVERLAY_PAGE = """\
% extends "layout.htm"
% block title:
  Dash Board
% endblock
%% a line comment, not in the output
% block body:
% for group in stat|groupby ('nation'):
  <h1>{% block sectionname scoped }Population of #group.grouper#{% endblock }</h1>
  % for row in group.list:
    <h2>#row.state#</h1>
    <a href="#was.ab ('state_view', row.nation, loop.index)#">#row.population#</a>
    <a href="##" onclick="javascript: create_map ('#row.state#');">Map</a>
  % endfor
% endfor
% raw:
  %HOME%/bin
  <a href="#" onclick="javascript: create_map ();">Map ##</a>
  % if not_a_statement
% endraw
escaped ## after raw
% endblock
"""


async def test_overlay_syntax(tmp_path: Path, cleanup_modules: object) -> None:
    app = app_in(tmp_path, {"layout.htm": OVERLAY_LAYOUT, "page.htm": OVERLAY_PAGE})
    app.jinja_overlay(line_statement="%", variable_string="#", block_start_string="{%", block_end_string="}")

    @app.route("/")
    def dashboard(was):
        stat = [{"nation": "KR", "state": "Seoul", "population": 10},
                {"nation": "KR", "state": "Busan", "population": 3}]
        return was.render("page.htm", stat=stat)

    @app.route("/state/<nation>/<int:index>")
    def state_view(was, nation, index):
        return "state"

    async with client_for(("/", app)) as client:
        text = (await client.get("/")).text
    assert text == textwrap.dedent("""\
        <title>  Dash Board
        </title>
          <h1>Population of KR</h1>
            <h2>Seoul</h1>
            <a href="/state/KR/1">10</a>
            <a href="#" onclick="javascript: create_map ('Seoul');">Map</a>
            <h2>Busan</h1>
            <a href="/state/KR/2">3</a>
            <a href="#" onclick="javascript: create_map ('Busan');">Map</a>
          %HOME%/bin
          <a href="#" onclick="javascript: create_map ();">Map ##</a>
          % if not_a_statement
        escaped # after raw
        """)


def test_overlay_elements_one_by_one(tmp_path: Path, cleanup_modules: object) -> None:
    app = app_in(tmp_path, {})
    app.jinja_overlay()
    env = app.jinja_env

    def render(source: str, **values: object) -> str:
        return env.from_string(source).render(**values)

    assert render("#x#", x=1) == "1"  # variables
    assert render("% if x:\nyes\n% endif\n", x=1) == "yes\n"  # line statements, trailing colon
    assert render("a\n%% comment\nb") == "a\n\nb"  # line comments (the line's newline stays)
    assert render("a %% comment\nb") == "a\nb"  # also after text
    assert render("{% if x }y{% endif }", x=1) == "y"  # blocks end with }
    assert render("{% set d = {'k': 1} }#d.k#") == "1"  # a dict's brace does not end the block
    assert render("a ## b") == "a # b"  # ## escapes #
    assert render("% raw\n#x# ##\n% endraw\n") == "#x# ##\n"  # raw lines
    assert render("   % if x\n   yes\n   % endif\n", x=1) == "   yes\n"  # lstrip_blocks, trim_blocks
    assert render('% set s = "##"\n#s#') == "##"  # line statements are left alone


async def test_template_hooks_and_render2(tmp_path: Path, cleanup_modules: object) -> None:
    app = app_in(tmp_path / "app" if (tmp_path / "app").mkdir() is None else tmp_path,
                 {"main.html": "main {{ name }}"}, name="hooks")
    part_dir = tmp_path / "part"
    part_dir.mkdir()
    (part_dir / "templates").mkdir()
    (part_dir / "templates" / "show.htm").write_text("part {{ name }}")
    part_module = types.ModuleType(f"part_{tmp_path.name}")
    part_module.__file__ = str(part_dir / "part.py")
    sys.modules[part_module.__name__] = part_module
    part = Saddlery(part_module.__name__)
    seen: list[str] = []

    @app.got_template
    def got(was, template):
        seen.append(f"got {template.name}")

    @app.template_rendered
    def rendered(was, template, context):
        seen.append(f"rendered {template.name} {sorted(k for k in context if k != 'was')}")

    @app.route("/")
    def main(was):
        return was.render("main.html", name="x")

    @part.route("/<name>")
    def hello(was, name):
        return was.render2("show.htm", name=name)

    app.mount("/part", part)
    async with client_for(("/", app)) as client:
        assert (await client.get("/")).text == "main x"
        assert (await client.get("/part/y")).text == "part y"
    assert seen == ["got main.html", "rendered main.html ['name']",
                    "got show.htm", "rendered show.htm ['name']"]


async def test_error_template(tmp_path: Path, cleanup_modules: object) -> None:
    app = app_in(tmp_path, {"error.html": "custom {{ code }} {{ reason }} {{ message or '' }}"})
    app.error_template = "error.html"

    @app.route("/")
    def index(was):
        return was.response("404 Not Found")

    async with client_for(("/", app)) as client:
        assert (await client.get("/")).text == "custom 404 Not Found "
        assert (await client.get("/nowhere")).text == "custom 404 Not Found "

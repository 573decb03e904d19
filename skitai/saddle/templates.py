"""Jinja2 templates for `was.render`, and the seed's overlay syntax.

Templates load from the `templates/` directory beside the app's module;
`was` is in every template's context. `.html`, `.htm` and `.xml`
templates are autoescaped (see docs/discussion/saddle-templates.md).

`app.jinja_overlay()` switches to the seed's syntax:

    #var#                      variables (`variable_string`)
    % for x in xs:             line statements (`line_statement`)
    %% a comment               line comments (the prefix doubled)
    {% block title }           blocks end with `block_end_string`
    ##                         a literal `#` (when the variable strings are one)
    % raw: ... % endraw        a raw block written as line statements

Jinja has no `##` escape and no raw line statement; instead of patching
its lexer, `OverlaySyntax.preprocess` (Jinja's own extension hook) rewrites
those two into plain Jinja before the lexer sees the source.
"""

from __future__ import annotations

import os
import re
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2.ext import Extension

AUTOESCAPED = ("html", "htm", "xml")


class OverlaySyntax(Extension):
    """Rewrites `##` and `% raw` / `% endraw` lines into plain Jinja, outside raw blocks."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        env = self.environment
        statement = env.line_statement_prefix or "%"
        prefix = re.escape(statement)
        raw_begin = re.compile(rf"[ \t]*{prefix}[ \t]*raw[ \t]*:?[ \t]*")
        raw_end = re.compile(rf"[ \t]*{prefix}[ \t]*endraw[ \t]*")
        start, end = env.variable_start_string, env.variable_end_string
        escape = start * 2 if start == end else None
        literal = f"{start}'{start}'{end}"  # a variable holding the character itself
        out = []
        in_raw = False
        for line in source.splitlines(keepends=True):
            text = line.rstrip("\r\n")
            if not in_raw and raw_begin.fullmatch(text):
                out.append(f"{env.block_start_string} raw {env.block_end_string}")
                in_raw = True
            elif in_raw and raw_end.fullmatch(text):
                # The newline stays so the next line still starts a line (trim_blocks eats it).
                out.append(f"{env.block_start_string} endraw {env.block_end_string}{line[len(text):]}")
                in_raw = False
            elif escape is not None and not in_raw and escape in line \
                    and not text.lstrip().startswith(statement):
                out.append(line.replace(escape, literal))
            else:
                out.append(line)
        return "".join(out)


def make_environment(root: str | None, auto_reload: bool) -> Environment:
    loader = FileSystemLoader(os.path.join(root, "templates")) if root else None
    return Environment(
        loader=loader,
        autoescape=select_autoescape(AUTOESCAPED),
        auto_reload=auto_reload,
    )


def overlay(
    env: Environment,
    line_statement: str = "%",
    variable_string: str = "#",
    block_start_string: str = "{%",
    block_end_string: str = "}",
    **options: Any,
) -> Environment:
    """A copy of `env` with the seed's overlay syntax; more Jinja options may be given."""
    return env.overlay(
        variable_start_string=variable_string,
        variable_end_string=variable_string,
        line_statement_prefix=line_statement,
        line_comment_prefix=line_statement * 2,
        block_start_string=block_start_string,
        block_end_string=block_end_string,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[OverlaySyntax],
        **options,
    )

"""The demo: a WSGI page and a directory of static files, both mounted at /.

    python examples/demo/app.py        # then open http://127.0.0.1:5000/
"""

import os

import skitai

HERE = os.path.dirname(os.path.abspath(__file__))

PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Skitai demo</title>
<link rel="stylesheet" href="/style.css"></head>
<body><h1>Hello from Skitai</h1>
<p>This page comes from a WSGI app; <a href="/style.css">style.css</a> and
<a href="/hello.txt">hello.txt</a> come from the static directory mounted beside it.</p>
</body></html>
"""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(PAGE)))])
    return [PAGE]


if __name__ == "__main__":
    skitai.run(mount=[("/", app), ("/", os.path.join(HERE, "static"))])

"""Serve the harness's `apps.wsgi_app` with the original Skitai (PyPI 0.57.16).

Run by `bench/run.sh orig` from the shared bench folder (so `apps` imports),
with the interpreter of a venv holding `skitai==0.57.16`, never this
checkout's: `python3 -m venv orig-venv && orig-venv/bin/pip install skitai==0.57.16`.
"""

import os
import sys

sys.path.insert(0, os.getcwd())  # the bench folder, for `apps`; its skitai comes from the venv

from apps import wsgi_app

import skitai

skitai.log_off("/")  # the peers log nothing per request
skitai.mount("/", wsgi_app)
skitai.run(address="127.0.0.1", port=int(os.environ["PORT"]), threads=4)

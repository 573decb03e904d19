"""HTML5 Websocket, Skito-Saddle style: the seed's echo, talk, calculate and chat routes.

Python 3 spelling. The seed names both its thread target and its route
`calculate` (the route would replace the target), reads `self.ws` in a
function, and passes `-c count` to its script: here the target is
`calculate_in_thread`, it sends through `ws`, and runs the seed's
calucate.py as `python -c CALCULATE count`. The route waits for the
threads it started before it returns, so none outlives its connection.
"""

import subprocess
import sys
import threading

import skitai
from skitai.saddle import Saddle

app = Saddle(__name__)
app.debug = True
app.use_reloader = True

# The seed's calucate.py: prints a line per step, flushing as it goes.
CALCULATE = "import sys\nfor i in range(int(sys.argv[1])):\n    print(i * i, flush=True)\n"


@app.route("/websocket/echo")
def echo(was, message=""):
    if "websocket_init" in was.env:
        was.env["websocket_init"] = (skitai.WEBSOCKET_REQDATA, 60, "message")
        return ""
    return "ECHO:" + message


@app.route("/websocket/talk")
def talk(was, name):
    if "websocket_init" in was.env:
        was.env["websocket_init"] = (skitai.WEBSOCKET_DEDICATE, 60, None)
        return ""

    ws = was.env["websocket"]
    while 1:
        messages = ws.getswait(10)
        if messages is None:
            break
        for m in messages:
            if m.lower() == "bye":
                ws.send("Bye, have a nice day." + m)
                ws.close()
                break
            elif m.lower() == "hello":
                ws.send("Hello, " + name)
            else:
                ws.send("You Said:" + m)
    return ""


def calculate_in_thread(ws, id, count):
    p = subprocess.Popen(
        [sys.executable, "-c", CALCULATE, count],
        universal_newlines=True,
        stdout=subprocess.PIPE, shell=False,
    )
    for line in iter(p.stdout.readline, ""):
        ws.send(line)
    p.stdout.close()
    p.wait()


@app.route("/websocket/calculate")
def calculate(was):
    if "websocket_init" in was.env:
        was.env["websocket_init"] = (skitai.WEBSOCKET_DEDICATE_THREADSAFE, 60, None)
        return ""

    workers = []
    ws = was.env["websocket"]
    while 1:
        messages = ws.getswait(10)
        if messages is None:
            break
        for m in messages:
            if m.lower() == "bye":
                ws.send("Bye, have a nice day." + m)
                ws.close()
                break
            elif m.lower().startswith("run"):
                worker = threading.Thread(target=calculate_in_thread, args=(ws, len(workers), m[3:].strip()))
                worker.start()
                workers.append(worker)
            else:
                ws.send("You said %s but I can't understatnd" % m)  # noqa: UP031 - the seed's spelling
    for worker in workers:
        worker.join()
    return ""


@app.route("/websocket/chat")
def chat(was, roomid):
    if "websocket_init" in was.env:
        was.env["websocket_init"] = (skitai.WEBSOCKET_MULTICAST, 60, "roomid")
        return ""

    ws = was.env["websocket"]
    while 1:
        messages = ws.getswait(10)
        if messages is None:
            break
        for client_id, m in messages:
            ws.sendall("Client %d Said: %s" % (client_id, m))  # noqa: UP031 - the seed's spelling
    return ""

from skitai.saddle import Saddlery

app = Saddlery()


@app.route("/<name>")
def sub_hello(was, name):
    return f"sub {name}"

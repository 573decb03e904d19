from skitai.saddle import Saddlery

part = Saddlery(__name__)


@part.route("/<name>")
def hello(was, name):
    return was.render2("show.htm", name=name)

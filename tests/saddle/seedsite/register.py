"""Other apps on the same server use what `decorators` registered (mounted at /register and /)."""

from skitai.saddle import Saddle

app = Saddle(__name__)
news = Saddle(__name__)


# app mounted to 'abc.com/register'
@app.route("/")
def index(was):
    return f"{was.loginengine.check_user_to('facebook')}, {was.searcher.query('ipad')}"


# app mounted to 'def.com/'
@news.route("/")
def news_index(was):
    return was.searcher.query("news")

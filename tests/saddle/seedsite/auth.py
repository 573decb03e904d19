"""WWW-Authenticate."""

from hashlib import md5

from skitai.saddle import Saddle

app = Saddle(__name__)

app.authorization = "digest"
app.authenticate = True
app.realm = "Partner App Area of mysite.com"
app.users = {"app": ("iamyourpartnerapp", 0, {'role': 'root'})}


@app.route("/hello/<name>")
def hello(was, name="Hans Roh"):
    return "Hello, %s" % name  # noqa: UP031


@app.route("/user")
def user(was):
    return {"name": was.request.user.name, "realm": was.request.user.realm, "info": was.request.user.info}


route_app = Saddle(__name__)
route_app.realm = "Partner App Area of mysite.com"
route_app.users = {"app": ("iamyourpartnerapp", 0, {'role': 'root'})}


@route_app.route("/hello/<name>", authenticate=True)
def guarded_hello(was, name="Hans Roh"):
    return "Hello, %s" % name  # noqa: UP031


@route_app.route("/open")
def open_page(was):
    return "open"


# The return of app.users.get (username) can be any of the three forms.
username, realm, password = "partner", "Partner App Area of mysite.com", "iamyourpartnerapp"

encrypted_password = md5(
    ("%s:%s:%s" % (username, realm, password)).encode("utf8")  # noqa: UP031
).hexdigest()


class Users:
    """An object with get(username), like a dictionary."""

    def get(self, name):
        return {
            "partner": (encrypted_password, True, {"role": "partner"}),  # (password, encrypted, userinfo)
            "plain": ("secret-two", False),  # (password, encrypted)
            "simple": "secret-three",  # password
        }.get(name)


forms_app = Saddle(__name__)
forms_app.authenticate = True
forms_app.realm = realm
forms_app.users = Users()
forms_app.digest_algorithms = ("MD5",)  # the encrypted passwords are MD5 hashes


@forms_app.route("/user")
def forms_user(was):
    return {"name": was.request.user.name, "realm": was.request.user.realm, "info": was.request.user.info}


# If your server run with SSL, you can use app.authorization = "basic"
basic_app = Saddle(__name__)
basic_app.authorization = "basic"
basic_app.authenticate = True
basic_app.realm = realm
basic_app.users = {"app": ("iamyourpartnerapp", 0, {'role': 'root'})}


@basic_app.route("/user")
def basic_user(was):
    return {"name": was.request.user.name, "info": was.request.user.info}

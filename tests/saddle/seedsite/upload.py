"""File Upload. The seed's `def upload (was, *form)` takes `**form` here, as
its body (`form.get`) needs, and it saves into SAVE_INTO, which the tests
point at a temporary directory, rather than d:\\var\\upload."""

from skitai.saddle import Saddle

app = Saddle(__name__)

SAVE_INTO = "d:\\var\\upload"

FORM = """
  <form enctype="multipart/form-data" method="post">
  <input type="hidden" name="submit-hidden" value="Genious">
  <p></p>What is your name? <input type="text" name="submit-name" value="Hans Roh"></p>
  <p></p>What files are you sending? <br />
  <input type="file" name="file">
  </p>
  <input type="submit" value="Send">
  <input type="reset">
</form>
"""


@app.route("/upload")
def upload(was, **form):
    if was.request.command == "get":
        return FORM
    else:
        file = form.get("file")
        if file:
            file.save(SAVE_INTO, dup="o")  # overwrite


@app.route("/attributes", methods=["POST"])
def attributes(was, file, **form):
    # 'file' object's attributes, and where save() puts it
    shown = {"path_exists": bool(file.path), "name": file.name, "size": file.size,
             "mimetype": file.mimetype, "fields": sorted(form)}
    shown["unique"] = file.save(SAVE_INTO, mkdir=True)  # dup = "u": make unique (default)
    return shown


@app.route("/rename", methods=["POST"])
def rename(was, file):
    return file.save(SAVE_INTO + "/renamed", name="report.txt", mkdir=True, dup="o")


@app.route("/discard", methods=["POST"])
def discard(was, file):
    file.remove()
    return str(file.size)

"""Check what a package index serves back for gluon-inception against what was uploaded.

    python scripts/check_index.py http://127.0.0.1:PORT DIST_FOLDER

Used by scripts/test_release.sh against its loopback pypiserver. It reads the index as pip does
(the simple page of the project, then the files its links point to) and its JSON page
(``/gluon-inception/json``), and checks:

- the simple page lists exactly the sdist and the wheel of this version, each link carrying the
  sha256 of the uploaded file, and the files served back are the uploaded bytes;
- the metadata inside both (the wheel's METADATA, the sdist's PKG-INFO): name, version (that of
  gluon_inception/_version.py), summary, project URLs, licence, Python requirement, classifiers and
  the cpu/gpu extras, as setup.py declares them; the classifiers and Requires-Python name exactly
  the supported Pythons (``SUPPORTED_PYTHONS`` in scripts/lib.sh), a licence and a topic; the long
  description is README.md, as Markdown.

Standard library plus ``packaging`` (the tools venv has it). Exit 1 with every problem listed.
"""

import ast
import email.parser
import hashlib
import html.parser
import json
import os
import re
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile

from packaging.specifiers import SpecifierSet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = "gluon-inception"
#: The supported Pythons, from their one list (scripts/lib.sh, which scripts/setup.sh chooses from).
PYTHONS = re.search(r"^SUPPORTED_PYTHONS=\(([^)]*)\)", open(os.path.join(ROOT, "scripts", "lib.sh")).read(),
                    re.M).group(1).split()  # fmt: skip


def setup_kwargs():
    """The literal keyword arguments of setup() in setup.py (read, not run)."""
    tree = ast.parse(open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            kwargs = {}
            for keyword in node.keywords:
                try:
                    kwargs[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    pass  # computed values (version, long_description, ...) are checked otherwise
            return kwargs
    raise SystemExit("no setup() call in setup.py")


def version():
    text = open(os.path.join(ROOT, "gluon_inception", "_version.py"), encoding="utf-8").read()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs).get("href", ""))


def get(url):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read()


def metadata_problems(kind, raw, expected):
    message = email.parser.Parser().parsestr(raw)
    problems = []

    def want(field, value):
        if message.get(field) != value:
            problems.append("%s: %s is %r, expected %r" % (kind, field, message.get(field), value))

    want("Name", PROJECT)
    want("Version", expected["version"])
    want("Summary", expected["description"])
    want("Description-Content-Type", "text/markdown")
    want("Requires-Python", expected["python_requires"])
    if expected.get("license") and message.get("License") != expected["license"] \
            and message.get("License-Expression") != expected["license"]:
        problems.append("%s: licence is %r, expected %r" % (kind, message.get("License"), expected["license"]))
    urls = dict(u.split(", ", 1) for u in message.get_all("Project-URL") or [])
    if urls != expected["project_urls"]:
        problems.append("%s: Project-URL %s, expected %s" % (kind, urls, expected["project_urls"]))
    for name in ("Documentation", "Source", "Issues"):
        if name not in urls:
            problems.append("%s: no %s URL" % (kind, name))
    classifiers = message.get_all("Classifier") or []
    if classifiers != expected["classifiers"]:
        problems.append("%s: classifiers %s, expected %s" % (kind, classifiers, expected["classifiers"]))
    for version in PYTHONS:
        if "Programming Language :: Python :: " + version not in classifiers:
            problems.append("%s: no classifier for Python %s" % (kind, version))
    for prefix in ("License :: ", "Topic :: "):
        if not any(c.startswith(prefix) for c in classifiers):
            problems.append("%s: no %s... classifier" % (kind, prefix))
    pythons = SpecifierSet(message.get("Requires-Python") or "")
    minors = sorted(int(v.split(".")[1]) for v in PYTHONS)
    outside = ("3.%d.9" % (minors[0] - 1), "3.%d.0" % (minors[-1] + 1))
    if not all("%s.0" % v in pythons for v in PYTHONS) or any(v in pythons for v in outside):
        problems.append("%s: Requires-Python %r is not exactly Python %s"
                        % (kind, message.get("Requires-Python"), ", ".join(PYTHONS)))  # fmt: skip
    extras = set(message.get_all("Provides-Extra") or [])
    if not {"cpu", "gpu"} <= extras:
        problems.append("%s: extras %s lack cpu or gpu" % (kind, sorted(extras)))
    if not any(r.startswith("mxnet==1.9.1") and 'extra == "cpu"' in r for r in message.get_all("Requires-Dist") or []):
        problems.append("%s: the cpu extra does not require mxnet==1.9.1" % kind)
    if message.get_payload().strip() != expected["readme"].strip():
        problems.append("%s: the long description is not README.md" % kind)
    return problems


def main(index, dist):
    expected = setup_kwargs()
    expected["version"] = version()
    expected["readme"] = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    uploaded = {name: os.path.join(dist, name) for name in os.listdir(dist)}
    v = expected["version"]
    names = {"sdist": "gluon_inception-%s.tar.gz" % v, "wheel": "gluon_inception-%s-py3-none-any.whl" % v}
    problems = []
    if sorted(uploaded) != sorted(names.values()):
        problems.append("%s holds %s, expected %s" % (dist, sorted(uploaded), sorted(names.values())))

    root = index.rstrip("/") + "/simple/"
    listing = Links()
    listing.feed(get(root).decode())
    if not any(link.rstrip("/").endswith(PROJECT) for link in listing.links):
        problems.append("%s does not list %s: %s" % (root, PROJECT, listing.links))
    page_url = root + PROJECT + "/"
    page = Links()
    page.feed(get(page_url).decode())
    served = {}
    for link in page.links:
        url = urllib.parse.urljoin(page_url, link)
        served[os.path.basename(urllib.parse.urlparse(url).path)] = url
    if sorted(served) != sorted(names.values()):
        problems.append("%s lists %s, expected %s" % (page_url, sorted(served), sorted(names.values())))

    for kind, name in names.items():
        if name not in served or name not in uploaded:
            continue
        local = open(uploaded[name], "rb").read()
        digest = hashlib.sha256(local).hexdigest()
        fragment = urllib.parse.urlparse(served[name]).fragment
        if fragment != "sha256=" + digest:
            problems.append("%s: the link carries %r, the upload's sha256 is %s" % (name, fragment, digest))
        body = get(served[name].split("#")[0])
        if body != local:
            problems.append("%s: the index serves other bytes than were uploaded" % name)
            continue
        path = os.path.join(os.path.dirname(uploaded[name]), "served-" + name)
        with open(path, "wb") as f:
            f.write(body)
        if kind == "wheel":
            with zipfile.ZipFile(path) as wheel:
                raw = wheel.read("gluon_inception-%s.dist-info/METADATA" % v).decode()
        else:
            with tarfile.open(path) as sdist:
                raw = sdist.extractfile("gluon_inception-%s/PKG-INFO" % v).read().decode()
        os.remove(path)
        problems += metadata_problems(kind + " " + name, raw, expected)

    # pypiserver's JSON page (/<project>/json, a part of PyPI's JSON API): the latest version and
    # the files of each release.
    info = json.loads(get(index.rstrip("/") + "/%s/json" % PROJECT))
    if info.get("info", {}).get("version") != v:
        problems.append("JSON page: version %r, expected %r" % (info.get("info", {}).get("version"), v))
    files = sorted(os.path.basename(f["url"]) for f in info.get("releases", {}).get(v, []))
    if files != sorted(names.values()):
        problems.append("JSON page: release %s has %s, expected %s" % (v, files, sorted(names.values())))

    if problems:
        print("the index does not serve the release as built:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("%s serves %s %s: both files byte for byte, and their metadata (summary, URLs, classifiers, "
          "Python %s, extras, README as the description)" % (index, PROJECT, v, ", ".join(PYTHONS)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""The documentation: it builds without warnings, and the reference pages cover the code.

The full build (about 10 s) runs once per session; the checks then read its output, so a public
name that the API reference misses, or a page that drifts from the code, fails here.
"""

import importlib
import os
import pkgutil
import posixpath
import subprocess
import sys

import pytest

from tests.support import ROOT, child_env, require

DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, os.path.join(DOCS, "_ext"))


def _have(module):
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    require(_have("sphinx") and _have("furo") and _have("numpydoc"), "sphinx, furo, numpydoc (pip install .[docs])")
    out = tmp_path_factory.mktemp("docs")
    env = child_env()
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), DOCS, str(out / "html")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, "the docs build failed or warned:\n" + proc.stdout[-3000:] + proc.stderr[-5000:]
    return out / "html"


def _inventory(html):
    from sphinx.util.inventory import InventoryFile

    with open(html / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", posixpath.join)
    return {name for entries in inv.values() for name in entries}


def _public_modules():
    import gluon_inception

    names = ["gluon_inception"]
    for info in pkgutil.walk_packages(gluon_inception.__path__, "gluon_inception."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return [importlib.import_module(name) for name in names]


@pytest.mark.slow
def test_every_name_in_every_all_has_a_page_in_the_api_reference(html):
    documented = _inventory(html)
    modules = _public_modules()
    exported = [(mod, name) for mod in modules for name in getattr(mod, "__all__", ())]
    assert ("gluon_inception", "googlenet") in [(m.__name__, n) for m, n in exported]
    missing = []
    for mod, name in exported:
        obj = getattr(mod, name)
        # The same object may be documented under any module that exports it (it is documented once).
        paths = {"%s.%s" % (m.__name__, name) for m in modules if getattr(m, name, None) is obj}
        if getattr(obj, "__module__", None) and getattr(obj, "__qualname__", None):
            paths.add("%s.%s" % (obj.__module__, obj.__qualname__))
        if not paths & documented:
            missing.append("%s.%s" % (mod.__name__, name))
    assert not missing, "public names without an API page: %s" % missing


@pytest.mark.slow
def test_command_line_page_shows_every_subcommand(html):
    from gluon_inception import cli

    page = (html / "cli.html").read_text(encoding="utf-8")
    for name in cli.COMMANDS:
        assert 'id="cli-%s"' % name in page, "gluon-inception %s is missing from cli.html" % name


def test_shell_blocks_are_checked_against_the_real_parser():
    import gi_docs

    from gluon_inception import cli

    parser = cli.build_parser()
    assert gi_docs.check_command(parser, "gluon-inception info --json", ROOT) == []
    assert gi_docs.check_command(parser, "python -m gluon_inception.cli info", ROOT) == []
    (problem,) = gi_docs.check_command(parser, "gluon-inception info --no-such-option", ROOT)
    assert "--no-such-option" in problem
    (problem,) = gi_docs.check_command(parser, "gluon-inception no-such-command", ROOT)
    assert "no-such-command" in problem
    (problem,) = gi_docs.check_command(parser, "python examples/no_such_script.py --x 1", ROOT)
    assert "examples/no_such_script.py does not exist" in problem


def test_shell_snippets_split_into_commands():
    import gi_docs

    text = "$ export X=1\nHVD=1 gluon-inception info \\\n    --json && echo done  # note\n# a comment\n"
    assert gi_docs.shell_commands(text) == ["export X=1", "HVD=1 gluon-inception info --json", "echo done"]


@pytest.mark.slow
def test_finetune_example_trains_from_a_weight_file_and_the_commands_read_its_checkpoints(tmp_path, demo_dataset):
    from gluon_inception import googlenet

    info = demo_dataset
    weights = tmp_path / "imagenet-shaped.params"
    googlenet(topology="gluoncv").save_parameters(str(weights))  # stands in for downloaded ImageNet weights
    env = child_env()
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "finetune.py"), "--data", info.root,
         "--pretrained", str(weights), "--epochs", "1", "--image-size", "32", "--batch-size", "64",
         "--checkpoints", str(tmp_path / "ft")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "epoch 1/1" in run.stdout and (tmp_path / "ft" / "finetuned-0001.json").exists()
    evaluate = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "evaluate", "--checkpoint", str(tmp_path / "ft"),
         "--data", info.root, "--split", "test"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert "1-crop        300" in evaluate.stdout


def _cells(html_text):
    import html as html_module
    import re

    def text(fragment):
        plain = html_module.unescape(re.sub(r"<[^>]+>", "", fragment))
        return " ".join(plain.replace("\u2019", "'").replace("\u2018", "'").split())

    return [[text(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html_text, re.S)]  # fmt: skip


@pytest.mark.slow
def test_model_zoo_table_matches_the_weight_registry(html):
    from gluon_inception.weights import list_pretrained

    page = (html / "model_zoo.html").read_text(encoding="utf-8")
    table = page[page.index("<table") : page.index("</table>")]
    header, *rows = _cells(table)
    assert header == ["entry", "top-1 / top-5 (%)", "topology", "file", "checksum", "preprocessing", "licence"]
    entries = list_pretrained()
    assert [row[0].split(" ")[0].rstrip(":") for row in rows] == [e["name"] for e in entries]
    for row, entry in zip(rows, entries):
        assert row[0].startswith(entry["name"] + (" (default):" if entry["default"] else ":"))
        assert row[1:5] == ["%s / %s" % (entry["top1"], entry["top5"]), entry["topology"], entry["file_name"],
                            entry["checksum"]]  # fmt: skip
        pre = entry["preprocessing"]
        assert "resize %d" % pre["resize"] in row[5] and "crop %d" % pre["crop_size"] in row[5]
        assert row[6] == entry["license"]
    for entry in entries:  # every field in the entry's own section
        assert 'id="zoo-%s"' % entry["name"].replace("_", "-") in page


def test_example_script_command_lines_are_parsed_by_the_scripts_own_parser():
    import gi_docs

    from gluon_inception import cli

    parser = cli.build_parser()
    ok = "horovodrun -np 3 -H localhost:3 python examples/train_imagenet.py --recipe demo --data d --epochs 2"
    assert gi_docs.check_command(parser, ok, ROOT) == []
    assert gi_docs.check_command(parser, "python examples/finetune.py --data d --epochs 1", ROOT) == []
    (problem,) = gi_docs.check_command(parser, "python examples/train_imagenet.py --no-such-flag 2", ROOT)
    assert "--no-such-flag" in problem
    (problem,) = gi_docs.check_command(parser, "python examples/finetune.py --epochs one", ROOT)
    assert "--epochs" in problem  # the engine's own flags, checked by its parser


def test_the_api_index_groups_every_public_module_under_its_layer():
    import gi_docs

    assert gi_docs.api_layer("gluon_inception") == ""
    assert gi_docs.api_layer("gluon_inception.checkpoint") == "core"
    assert gi_docs.api_layer("gluon_inception.models") == "models"
    assert gi_docs.api_layer("gluon_inception.weights.store") == "weights"
    modules = list(gi_docs.ApiIndex().modules)  # imports them all, as the docs build does
    index = gi_docs.api_index(modules)
    listed = [line.split("`")[1] for line in index.splitlines() if line.startswith("   * - :mod:")]
    assert sorted(listed) == sorted(modules), "every public module is listed once"
    headings = [line for line in index.splitlines() if line in dict(gi_docs.API_LAYERS).values()]
    assert headings == [title for _, title in gi_docs.API_LAYERS], "bottom layer first, then upwards"


def test_links_into_the_package_follow_reexports_and_a_stale_one_warns(caplog):
    import logging

    import gi_docs
    from docutils import nodes

    class Domain:
        def resolve_xref(self, env, fromdoc, builder, typ, target, node, contnode):
            return nodes.reference(text=target) if target == "gluon_inception.weights.entries.get_pretrained" else None

    class Env:
        def get_domain(self, name):
            return Domain()

    class App:
        builder = None
        _gi_aliases = {"gluon_inception.weights.entries.get_pretrained": ["gluon_inception.weights.get_pretrained"]}

    def ref(target, domain="py"):
        return nodes.Element(refdomain=domain, reftype="func", reftarget=target, refdoc="page")

    app, env, content = App(), Env(), nodes.Text("x")
    resolved = gi_docs.resolve_package_reference(app, env, ref("gluon_inception.weights.get_pretrained"), content)
    assert resolved.astext() == "gluon_inception.weights.entries.get_pretrained"
    with caplog.at_level(logging.WARNING):
        assert gi_docs.resolve_package_reference(app, env, ref("gluon_inception.model_zoo.googlenet"), content) is None
        assert gi_docs.resolve_package_reference(app, env, ref("numpy.ndarray"), content) is None
    assert [r.getMessage() for r in caplog.records] == [
        "reference to gluon_inception.model_zoo.googlenet, which the API reference does not document"
    ]

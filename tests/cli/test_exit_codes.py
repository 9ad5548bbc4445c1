"""The exit status table in docs/cli.rst is the one the code gives: read from the page, checked against
the constants and every error class of the package, and against the table in cli/main.py's docstring."""
import importlib
import inspect
import os
import pkgutil
import re

import gluon_inception
from gluon_inception import errors
from gluon_inception.training.engine import NonFiniteLoss
from gluon_inception.training.preemption import EXIT_INTERRUPTED, EXIT_PREEMPTED, TrainingInterrupted
from tests.support import ROOT

cli_main = importlib.import_module("gluon_inception.cli.main")  # the module, not the function of that name


def _table(text, rule):
    """``{status: meaning}`` of an RST simple table whose rows start with a status, as in docs/cli.rst."""
    rows, status = {}, None
    for line in text.splitlines():
        match = re.match(r"^(\d+(?:\+N)?|128\+N)\s{2,}(.*)$", line.strip() if rule == "indented" else line)
        if match:
            status = match.group(1)
            rows[status] = match.group(2).strip()
        elif status and line.startswith(" " * 8) and line.strip() and not set(line.strip()) <= {"="}:
            rows[status] += " " + line.strip()
        elif set(line.strip()) <= {"="} and line.strip():
            status = None
    return rows


def _docs_table():
    with open(os.path.join(ROOT, "docs", "cli.rst"), encoding="utf-8") as f:
        text = f.read()
    return _table(text.split("Errors and exit status", 1)[1], "plain")


def _error_classes():
    for info in pkgutil.walk_packages(gluon_inception.__path__, "gluon_inception."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, errors.GluonInceptionError) and cls.__module__ == info.name:
                yield cls


def test_the_documented_statuses_are_the_codes_constants():
    table = _docs_table()
    assert set(table) == {"0", "1", "2", "3", "75", "130", "128+N", "141"}, sorted(table)
    assert errors.FAILURE == 1 and "failure at run time" in table["1"] and "the disk is full" in table["1"]
    assert errors.USAGE == 2 and "usage error" in table["2"]
    assert NonFiniteLoss.exit_code == 3 and "NaN/inf" in table["3"]
    assert EXIT_PREEMPTED == 75 and "SIGTERM or SIGUSR1" in table["75"]
    assert EXIT_INTERRUPTED == 130 and "Ctrl-C" in table["130"]
    assert errors.NoSpaceError.exit_code == 1  # the disk is full


def test_every_error_class_exits_with_a_documented_status():
    documented = {int(s) for s in _docs_table() if s.isdigit()}
    classes = list(_error_classes())
    assert len(classes) > 20, [c.__name__ for c in classes]
    for cls in classes:
        if cls is TrainingInterrupted:  # its status is 75 or 130, chosen per signal
            continue
        code = cls.exit_code
        if isinstance(code, property) or not isinstance(code, int):
            continue  # set per instance (RankError carries rank 0's)
        assert code in documented, (cls.__module__, cls.__name__, code)


def test_the_console_scripts_own_table_says_the_same():
    docs = _docs_table()
    code = _table(cli_main.__doc__.split("====", 1)[1], "plain")
    assert set(code) == set(docs) - {"128+N"}, (sorted(code), sorted(docs))
    for status, meaning in code.items():
        first = meaning.split("(")[0].split(":")[0].split(";")[0].strip().lower()[:20]
        assert first[:12] in docs[status].lower(), (status, meaning, docs[status])

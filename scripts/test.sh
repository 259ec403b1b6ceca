#!/usr/bin/env bash
# The test command: installs what the tests need, runs the static checks
# (ruff, mypy --strict, import-linter), then pytest. Run as root.
#   scripts/test.sh          everything
#   scripts/test.sh unit     one tier (unit, component, store, contract, lab), after the static checks
#   scripts/test.sh lint     only the static checks
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --dev
tier="${1:-all}"
V=.venv/bin

echo "== ruff"; $V/ruff check .; $V/ruff format --check .
echo "== mypy --strict"; $V/mypy
echo "== import-linter"; $V/lint-imports
[ "$tier" = lint ] && exit 0

case "$tier" in
  all) paths=(tests) ;;
  unit|component|store|contract|lab) paths=("tests/$tier") ;;
  *) echo "unknown tier '$tier' (all, unit, component, store, contract, lab, lint)" >&2; exit 2 ;;
esac
echo "== pytest ${paths[*]}"
exec $V/pytest "${paths[@]}"

#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# Run the whole test suite once per configuration: scripts/test.sh [extra pytest args...]
#   sqlite-local  SQLite in the data folder, chunks in a local folder (the embedded instance)
#   pg-rgw        a fresh PostgreSQL 15 database per test and a Ceph RGW bucket per test
#                 (tests/backend.py; engines started by scripts/engines/*.sh, stopped at the end)
# CARTABLE_TEST_BACKENDS chooses (default: both, in that order). Tests marked local_only (about
# the local folder or the SQLite file themselves) run on sqlite-local and are listed, not run, on
# pg-rgw. Each configuration's wall time is printed. Exits non-zero when one of them fails, and
# also when one collected no test (pytest exit code 5).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=${CARTABLE_VENV:-.venv}
if [[ ! -x "$venv/bin/python" ]]; then
  echo "test.sh: no venv at $venv; run scripts/install-deps.sh first" >&2
  exit 2
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"

rc=0
for backend in ${CARTABLE_TEST_BACKENDS:-sqlite-local pg-rgw}; do
  echo "== tests on $backend"
  start=$SECONDS
  one=0
  CARTABLE_TEST_BACKEND=$backend python -m pytest -q "$@" || one=$?
  echo "== tests on $backend: exit $one in $((SECONDS - start)) s"
  if ((one == 5)); then
    echo "test.sh: pytest collected no test on $backend (exit 5): treating as a failure" >&2
    one=1
  fi
  if ((one != 0)); then rc=$one; fi
done
exit "$rc"

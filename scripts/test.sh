#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# Run the whole test suite: scripts/test.sh [extra pytest args...]
# Exits non-zero when pytest fails, and also when it collected no test (pytest exit code 5).
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
python -m pytest -q "$@" || rc=$?
if ((rc == 5)); then
  echo "test.sh: pytest collected no test (exit 5): treating as a failure" >&2
  exit 1
fi
exit "$rc"

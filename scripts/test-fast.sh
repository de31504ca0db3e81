#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# Inner-loop tests: everything except slow, interop, crash and power-loss tests (scripts/test.sh runs
# all), on SQLite + the local folder unless CARTABLE_TEST_BACKENDS says otherwise (e.g. "pg-rgw").
#   scripts/test-fast.sh [extra pytest args...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARTABLE_TEST_BACKENDS=${CARTABLE_TEST_BACKENDS:-sqlite-local} \
  exec scripts/test.sh -m "not slow and not interop and not crash and not powerloss" "$@"

#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# Install what cartable's test suite needs on a Debian 12 machine, idempotently.
#
#   scripts/install-deps.sh            # Debian packages (as root) + venv + pip install -e '.[test]'
#
# Environment:
#   CARTABLE_VENV   where the venv lives (default: .venv in the repo root)
#   PYTHON          interpreter to build the venv with (default: python3 on PATH)
#   SKIP_APT=1      skip the Debian part (e.g. on a machine where you are not root)
#
# Fast path: when every Debian package is already installed, apt-get is not run at all;
# when the venv exists, it is reused (pip install still runs so new dependencies land).
set -euo pipefail

# Debian packages the tests need: WebDAV and Nextcloud clients, and the engines the scale-out
# tests start on loopback (scripts/engines/): PostgreSQL 15, Ceph RGW (one mon, one OSD, radosgw)
# and OpenStack Swift with s3api.
PKGS=(litmus nextcloud-desktop-cmd owncloud-client-cmd rclone wrk
      postgresql-15 ceph-mon ceph-osd radosgw ceph-common
      swift swift-proxy swift-object swift-container swift-account)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root=$(pwd)

log() { printf '[install-deps] %s\n' "$*"; }

# ---- Debian packages -------------------------------------------------------
is_installed() {
  dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

if [[ "${SKIP_APT:-0}" == 1 ]]; then
  log "SKIP_APT=1: not touching Debian packages"
else
  missing=()
  for p in "${PKGS[@]}"; do
    is_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "Debian packages already installed: ${PKGS[*]}"
  else
    if [[ $(id -u) -ne 0 ]]; then
      log "missing Debian packages: ${missing[*]} (run as root, or install them yourself)" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "missing Debian packages: ${missing[*]}; running apt-get update"
    apt-get update -q
    log "apt-get install -y --no-install-recommends ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# ---- Python venv -------------------------------------------------------------
venv=${CARTABLE_VENV:-.venv}
python=${PYTHON:-python3}
if [[ -x "$venv/bin/python" ]]; then
  log "reusing venv $venv ($("$venv/bin/python" --version 2>&1))"
else
  log "creating venv $venv with $(command -v "$python") ($("$python" --version 2>&1))"
  "$python" -m venv "$venv"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
log "pip install -e '.[test]' into $venv"
"$venv/bin/python" -m pip install -q -e "$repo_root[test]"
log "done: venv $venv ready ($("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'))"

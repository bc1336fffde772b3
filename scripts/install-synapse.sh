#!/usr/bin/env bash
# Install a Matrix Synapse homeserver into its own virtualenv, .venv-synapse at the repo root,
# for the integration tests in tests/test_synapse_harness.py (and the Matrix adapter tests).
#
# Synapse pins many dependencies, so it never shares the project venv. The script is idempotent:
# a second run with the wanted version already installed only prints that version.
#
# Environment:
#   SYNAPSE_VERSION  version to install (default below; "latest" installs the newest on PyPI)
#   PYTHON           interpreter used to create the venv (default: python3)
#   SYNAPSE_VENV     venv location (default: <repo>/.venv-synapse)
set -euo pipefail

DEFAULT_SYNAPSE_VERSION="1.163.2"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SYNAPSE_VENV:-$repo_root/.venv-synapse}"
python="${PYTHON:-python3}"
version="${SYNAPSE_VERSION:-$DEFAULT_SYNAPSE_VERSION}"

if [[ "$version" == "latest" ]]; then
  requirement="matrix-synapse"
else
  requirement="matrix-synapse==$version"
fi

installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))' \
    2>/dev/null || true
}

start=$SECONDS

if ! command -v "$python" >/dev/null 2>&1; then
  echo "install-synapse: '$python' not found; install python3 (>= 3.10) first" >&2
  exit 2
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "install-synapse: creating virtualenv $venv"
  if ! "$python" -m venv "$venv"; then
    echo "install-synapse: '$python -m venv' failed; on Debian: apt-get install python3-venv" >&2
    rm -rf "$venv"
    exit 2
  fi
fi

current="$(installed_version)"
if [[ -n "$current" && ( "$version" == "latest" || "$current" == "$version" ) ]] \
   && "$venv/bin/python" -c 'import synapse.app.homeserver' >/dev/null 2>&1; then
  echo "install-synapse: matrix-synapse $current already installed in $venv"
else
  echo "install-synapse: installing $requirement into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
  "$venv/bin/python" -c 'import synapse.app.homeserver'
fi

echo "install-synapse: matrix-synapse $(installed_version) ready in $venv ($((SECONDS - start)) s)"

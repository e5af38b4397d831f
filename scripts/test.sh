#!/usr/bin/env bash
# The test suite. Installs what the tests need on a fresh Debian machine (headless
# Chromium and its WebDriver for the dashboard test; schemathesis, and the OpenAPI
# validator, client generator and response validator, for the API tests; PostgreSQL, for
# a throwaway cluster on a loopback port), then runs every test. Extra arguments go to `cargo test` (e.g. `--no-run`).
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install PACKAGE...: installs the packages without recommends and without upgrading
# anything else. Prints why not when they cannot be installed (not Debian, not root and no
# sudo, apt-get failed); prints nothing when they were.
apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "not root and no sudo to install $*"
      return
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get to install $* (not Debian)"
    return
  fi
  echo "installing $* (apt-get, --no-install-recommends)" >&2
  if ! { "${sudo[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
      --no-install-recommends --no-upgrade "$@" >/dev/null; }; then
    echo "apt-get could not install $*"
  fi
}

# Chromium and its WebDriver: only the packages that are missing. Where they cannot be
# installed, the browser tests say SKIPPED with the reason instead of failing.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  why=$(apt_install "${missing[@]}")
  if [ -n "$why" ]; then
    export TEND_BROWSER_SKIP="$why"
    echo "the browser tests will be skipped: $TEND_BROWSER_SKIP"
  fi
fi

# The Python tools of the API tests, pinned, each set in a venv of its own under target/.
# Debian's python3 makes a venv only with python3-venv (ensurepip). Where a venv cannot be
# made, or pip cannot install from PyPI, the tests that need it say SKIPPED and why.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  why=$(apt_install python3-venv)
  [ -z "$why" ] || echo "python3 -m venv will not work: $why"
fi

# venv DIR WHAT VERSION PIP-ARGUMENT...: DIR holds WHAT, installed by pip; installed anew
# when VERSION (what the arguments name) changes.
venv() {
  local dir=$1 what=$2 wanted=$3
  shift 3
  if [ -f "$dir/installed" ] && [ "$(cat "$dir/installed")" = "$wanted" ]; then
    return
  fi
  rm -rf "$dir"
  if python3 -m venv "$dir" >/dev/null 2>&1 &&
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"; then
    echo "$wanted" >"$dir/installed"
    echo "installed $what into $dir"
  else
    echo "could not install $what (python3 -m venv, then pip from PyPI); its tests will be skipped"
    rm -rf "$dir"
  fi
}

# schemathesis, for the API conformance test (tests/schemathesis.rs).
venv target/schemathesis schemathesis 4.32.5 schemathesis==4.32.5
# openapi-spec-validator, openapi-python-client and openapi-core, for the generated
# client's test (tests/openapi_client.rs): the file pins them and all they pull in.
requirements=tests/openapi_client/requirements.txt
venv target/openapi-client "the OpenAPI client tools" \
  "$(sha256sum "$requirements" | cut -d' ' -f1)" -r "$requirements"

# A throwaway PostgreSQL for the PostgreSQL backend's tests (scripts/postgres.sh), stopped
# and removed when this script exits.
source scripts/postgres.sh
start_postgres

# Every test, with the PostgreSQL backend built (its behaviour suite and its own tests run
# against the cluster above). The scenarios bench's peer job queues (benches/peers) have no
# tests and are built only when that bench runs.
cargo test --workspace --exclude tend-peers --features postgres "$@"

# The suites that matter once more with every runtime and example server on PostgreSQL:
# supervision, graph controls, interrupts and resumes, and the SIGKILL crash tests.
if [ -n "${TEND_TEST_POSTGRES_URL:-}" ] || [ -n "${CI:-}" ]; then
  TEND_TEST_BACKEND=postgres cargo test --features postgres "$@" \
    --test supervision --test controls --test semaphores --test rates --test interrupt \
    --test resume --test retry --test timeout --test cancel --test faults --test idempotent \
    --test runtime --test lifecycle --test crash --test server
else
  echo "SKIPPED: the suites on PostgreSQL (no server; TEND_TEST_POSTGRES_URL unset)"
fi

#!/usr/bin/env bash
# The test suite. Installs what the tests need on a fresh Debian machine (headless
# Chromium and its WebDriver for the dashboard test, schemathesis for the API
# conformance test), then runs every test. Extra arguments go to `cargo test` (e.g.
# `--no-run`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Chromium and its WebDriver: only the packages that are missing, without recommends and
# without upgrading anything else. Where they cannot be installed (not Debian, no root
# and no sudo), the browser tests say SKIPPED with the reason instead of failing.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    sudo=(none)
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    export TEND_BROWSER_SKIP="no apt-get to install ${missing[*]} (not Debian)"
  elif [ "${sudo[0]:-}" = none ]; then
    export TEND_BROWSER_SKIP="not root and no sudo to install ${missing[*]}"
  else
    echo "installing ${missing[*]} for the browser tests (apt-get, --no-install-recommends)"
    if ! { "${sudo[@]}" apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
        --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null; }; then
      export TEND_BROWSER_SKIP="apt-get could not install ${missing[*]}"
    fi
  fi
  if [ -n "${TEND_BROWSER_SKIP:-}" ]; then
    echo "the browser tests will be skipped: $TEND_BROWSER_SKIP"
  fi
fi

# schemathesis, for the OpenAPI conformance test (tests/schemathesis.rs), in a venv of its
# own under target/. Where it cannot be installed that test says SKIPPED and why.
st_venv=target/schemathesis
if [ ! -x "$st_venv/bin/st" ]; then
  if python3 -m venv "$st_venv" >/dev/null 2>&1 &&
    "$st_venv/bin/pip" install -q --disable-pip-version-check schemathesis==4.32.5; then
    echo "installed schemathesis into $st_venv"
  else
    echo "could not install schemathesis (python3 -m venv, then pip from PyPI); its test will be skipped"
    rm -rf "$st_venv"
  fi
fi

cargo test --workspace "$@"

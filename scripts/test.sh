#!/usr/bin/env bash
# The test suite. Installs what the tests need on a fresh Debian machine (headless
# Chromium and its WebDriver for the dashboard test, schemathesis for the API
# conformance test), then runs every test. Extra arguments go to `cargo test` (e.g.
# `--no-run`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
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

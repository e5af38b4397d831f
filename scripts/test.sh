#!/usr/bin/env bash
# The test suite. Installs what the tests need on a fresh Debian machine (headless
# Chromium and its WebDriver for the dashboard test), then runs every test. Extra
# arguments go to `cargo test` (e.g. `--no-run`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

cargo test --workspace "$@"

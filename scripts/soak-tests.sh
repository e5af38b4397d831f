#!/usr/bin/env bash
# Runs the whole test suite N times in a row and counts the green runs. With --busy, two
# busy loops keep both cores loaded for the whole time, so a test whose result depends on
# the machine's speed shows itself. A run that fails is a defect to fix, never to retry.
#
#   bash scripts/soak-tests.sh            # 10 runs, idle machine
#   bash scripts/soak-tests.sh 10 --busy  # 10 runs, both cores kept busy
#
# Each run's output is kept in target/soak/run-<k>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10
busy=0
for arg in "$@"; do
  case "$arg" in
    --busy) busy=1 ;;
    '' | *[!0-9]*) echo "usage: $0 [N] [--busy]" >&2; exit 2 ;;
    *) runs="$arg" ;;
  esac
done

# Installs what the tests need and builds everything once, so the runs time only tests.
bash scripts/test.sh --no-run >/dev/null

loaders=()
stop_loaders() {
  for pid in "${loaders[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_loaders EXIT
if [ "$busy" -eq 1 ]; then
  for _ in 1 2; do
    (while :; do :; done) &
    loaders+=("$!")
  done
fi

mkdir -p target/soak
passed=0
failed=0
for k in $(seq 1 "$runs"); do
  if cargo test --workspace >"target/soak/run-$k.log" 2>&1; then
    passed=$((passed + 1))
    echo "run $k: green"
  else
    failed=$((failed + 1))
    echo "run $k: RED (target/soak/run-$k.log):"
    grep -E "^test .* FAILED|panicked at" "target/soak/run-$k.log" | head -20 || true
  fi
done
echo "soak$([ "$busy" -eq 1 ] && echo ' (busy)'): $passed passed, $failed failed"
[ "$failed" -eq 0 ]

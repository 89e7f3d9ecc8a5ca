#!/usr/bin/env bash
# The one test command: on a fresh Debian 12 machine, as root, it installs
# what is missing, configures, builds and runs every test tier through
# ctest, repeats the unit, kernel and engine tiers under ASan/UBSan, and runs each
# libFuzzer target briefly (clang build).
#
#   POPGUARD_TEST_LABELS=kernel tests/run.sh   # one tier (ctest -L regex)
#   POPGUARD_SKIP_SANITIZE=1 tests/run.sh      # skip the sanitizer pass
#   POPGUARD_SKIP_FUZZ=1 tests/run.sh          # skip the fuzz pass
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
labels=${POPGUARD_TEST_LABELS:-.}
jobs=$(nproc)

"$root/deploy/install-deps.sh"

# Namespaces, veths and pins that tests create are removed even when a
# test fails or is killed.
trap '"$root/tests/cleanup.sh"' EXIT
trap 'exit 130' INT TERM
"$root/tests/cleanup.sh"

# build_and_test DIR LABELS TARGETS [cmake args...]; TARGETS "all" or a list.
build_and_test() {
  local dir=$1 label_regex=$2 targets=$3
  shift 3
  cmake -S "$root" -B "$dir" -G Ninja -DPOPGUARD_WERROR=ON "$@"
  # shellcheck disable=SC2086  # the target list splits on purpose
  cmake --build "$dir" -j "$jobs" --target $targets
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -L "$label_regex"
}

build_and_test "$root/build" "$labels" all
if [[ -z ${POPGUARD_SKIP_SANITIZE:-} ]]; then
  build_and_test "$root/build-asan" "unit|kernel|engine" all -DPOPGUARD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
if [[ -z ${POPGUARD_SKIP_FUZZ:-} ]]; then
  build_and_test "$root/build-fuzz" fuzz "popguard_pop3_fuzz popguard_rules_fuzz popguard_flow_fuzz popguard_packet_fuzz popguard_events_fuzz popguard_regex_fuzz" \
    -DPOPGUARD_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
fi

#!/usr/bin/env bash
# The one test command: on a fresh Debian 12 machine, as root, it installs
# what is missing, configures, builds and runs every test tier through
# ctest, then repeats the unit and kernel tiers under ASan/UBSan.
#
#   POPGUARD_TEST_LABELS=kernel tests/run.sh   # one tier (ctest -L regex)
#   POPGUARD_SKIP_SANITIZE=1 tests/run.sh      # skip the sanitizer pass
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
labels=${POPGUARD_TEST_LABELS:-.}
jobs=$(nproc)

"$root/deploy/install-deps.sh"

# Namespaces, veths and pins that tests create are removed even when a
# test fails or is killed.
trap '"$root/tests/cleanup.sh"' EXIT
"$root/tests/cleanup.sh"

build_and_test() {
  local dir=$1 label_regex=$2
  shift 2
  cmake -S "$root" -B "$dir" -G Ninja -DPOPGUARD_WERROR=ON "$@"
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -L "$label_regex"
}

build_and_test "$root/build" "$labels"
if [[ -z ${POPGUARD_SKIP_SANITIZE:-} ]]; then
  build_and_test "$root/build-asan" "unit|kernel" -DPOPGUARD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi

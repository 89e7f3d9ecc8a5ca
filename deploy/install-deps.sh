#!/usr/bin/env bash
# The one list of Debian 12 packages popguard needs to build, test and run.
# Idempotent: installs only what is missing, runs `apt-get update` at most once,
# and mounts bpffs when /sys/fs/bpf is not one.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config ninja-build
  # BPF toolchain: clang/llc for -target bpf, bpftool for skeletons, libbpf + its deps
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  # C++ libraries
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  # libFuzzer and sanitizer runtimes for clang
  libclang-rt-14-dev
  # detection engine: multi-pattern matching, regex confirmation
  libhyperscan-dev libpcre2-dev nlohmann-json3-dev
  # capture replay
  libpcap-dev
  # integration tests: a real POP3 server, real clients, captures of them
  dovecot-core dovecot-pop3d fetchmail curl python3 tcpdump openssl
  # tests: namespaces, veth, qdiscs, offload settings
  iproute2 ethtool
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: must run as root (apt-get, bpffs mount)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
fi

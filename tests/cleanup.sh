#!/usr/bin/env bash
# Removes what tests leave behind when they die mid-way: network namespaces
# and interfaces named pgt*, and test pins under /sys/fs/bpf/popguard-test*.
set -u
for ns in $(ip netns list 2>/dev/null | awk '/^pgt/ {print $1}'); do
  ip netns del "$ns" 2>/dev/null
done
for dev in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^pgt/ {sub(/@.*/, "", $2); print $2}'); do
  ip link del "$dev" 2>/dev/null
done
rm -rf /sys/fs/bpf/popguard-test* 2>/dev/null
exit 0

#!/usr/bin/env bash
# The command lines as users meet them: popguardctl rules check (exit codes,
# file:line errors, kernel notes), popguard-agent replay (EVE records,
# counters, a damaged capture, running without root).
#   cli_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
work=$(mktemp -d /tmp/popguard-test-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() {  # expect_exit CODE COMMAND...
  local want=$1 rc=0
  shift
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  [[ $rc -eq $want ]] || { cat "$work/out" "$work/err" >&2; fail "exit $rc, wanted $want: $*"; }
}

# --- popguardctl rules check
expect_exit 0 "$bin/popguardctl" rules check "$src/rules"
grep -q "^2[0-9] rules compiled from 1 file(s), 0 error(s)" "$work/out" || fail "summary: $(cat "$work/out")"

cat >"$work/bad.rules" <<'RULES'
alert tcp any any -> any 110 (msg:"fine"; pop3.command; content:"USER"; sid:1;)
alert tcp any any -> any 110 (msg:"typo"; pop3.comand; content:"USER"; sid:2;)
alert tcp any any -> any 110 (msg:"ack"; flags:A+; sid:3;)
drop tcp any any -> any 110 (msg:"long"; pop3.command; content:"PASS"; pop3.args; bsize:>600; sid:4;)
alert tcp any any -> any 110 (msg:"syn"; flags:S,12; threshold:type both, track by_src, count 30, seconds 120; sid:5;)
RULES
expect_exit 1 "$bin/popguardctl" rules check "$work/bad.rules"
grep -q "^$work/bad.rules:2: sid 2: unknown POP3 keyword 'pop3.comand'" "$work/err" || fail "typo: $(cat "$work/err")"
grep -q "^$work/bad.rules:3: sid 3: flags:" "$work/err" || fail "flags: $(cat "$work/err")"
grep -q "kernel: sid 4: PASS lines over 607 bytes are dropped" "$work/out" || fail "plan: $(cat "$work/out")"
grep -q "kernel: sid 5: tests TCP flags, so the kernel reports every client SYN" "$work/out" || fail "syn plan: $(cat "$work/out")"
expect_exit 1 "$bin/popguardctl" rules check "$work/missing.rules"
expect_exit 2 "$bin/popguardctl" rules frobnicate

# --- replay: a capture the test writes (python, no project code involved)
python3 - "$work/attack.pcap" <<'PY'
import struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def frame(src, dst, sport, dport, seq, ack, flags, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = bytes(map(int, src.split("."))) + bytes(map(int, dst.split("."))) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp
c, s = "192.0.2.7", "198.51.100.1"
frames, cseq, sseq = [], 100, 900
frames.append(frame(c, s, 40000, 110, cseq, 0, 0x02, b"")); cseq += 1
frames.append(frame(s, c, 110, 40000, sseq, cseq, 0x12, b"")); sseq += 1
def srv(p):
    global sseq; frames.append(frame(s, c, 110, 40000, sseq, cseq, 0x18, p)); sseq += len(p)
def cli(p):
    global cseq; frames.append(frame(c, s, 40000, 110, cseq, sseq, 0x18, p)); cseq += len(p)
srv(b"+OK ready\r\n"); cli(b"USER alice\r\n"); srv(b"+OK\r\n"); cli(b"PASS x\r\n"); srv(b"+OK\r\n")
cli(b"UIDL -1\r\n"); srv(b"-ERR no\r\n")
for i in range(40): cli(b"NOOP\r\n"); srv(b"+OK\r\n")
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i, fr in enumerate(frames):
        f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)) + fr)
PY

for mode in "" --no-prefilter; do
  # shellcheck disable=SC2086  # mode is one optional word
  expect_exit 0 "$bin/popguard-agent" replay --pcap "$work/attack.pcap" $mode
  [[ $(wc -l <"$work/out") -eq 1 ]] || fail "one alert expected ($mode): $(cat "$work/out")"
  python3 - "$work/out" <<'PY' || fail "EVE layout ($mode)"
import json, sys
r = json.loads(open(sys.argv[1]).readline())
for k in ("timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "app_proto", "alert", "pop3"):
    assert k in r, k
assert r["event_type"] == "alert" and r["app_proto"] == "pop3" and r["proto"] == "TCP"
a = r["alert"]
assert a["signature_id"] == 9100001 and a["gid"] == 1 and a["rev"] >= 1 and a["action"] == "allowed", a
assert a["signature"] == "POP3 Request with Malformed UIDL Command" and a["category"] and a["severity"] >= 1, a
assert r["src_ip"] == "192.0.2.7" and r["src_port"] == 40000 and r["dest_port"] == 110, r
assert r["pop3"] == {"command": "UIDL", "args": "-1"}, r["pop3"]
assert r["timestamp"].startswith("2023-11-14T22:13:"), r["timestamp"]
PY
  grep -q "^replay: frames 89, " "$work/err" || fail "counters ($mode): $(cat "$work/err")"
done
grep -q "^kernel: payload bytes" "$work/err" && fail "no kernel counters without the prefilter"

# A capture cut inside a record: what came before is processed, the error
# says where, and the exit status is non-zero.
size=$(stat -c %s "$work/attack.pcap")
head -c $((size - 20)) "$work/attack.pcap" >"$work/cut.pcap"
expect_exit 1 "$bin/popguard-agent" replay --pcap "$work/cut.pcap" --no-prefilter
grep -q "signature_id\":9100001" "$work/out" || fail "alert before the damage lost"
grep -q "record 88" "$work/err" || fail "damage location: $(cat "$work/err")"

expect_exit 2 "$bin/popguard-agent" replay --pcap "$work/attack.pcap" --rules "$work/missing.rules" --no-prefilter
grep -q "missing.rules" "$work/err" || fail "missing rules file not named"

# Without root: a clear error that suggests --no-prefilter, which works.
if command -v setpriv >/dev/null && [[ $(id -u) -eq 0 ]]; then
  chmod 755 "$work"
  chmod 644 "$work/attack.pcap"
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  expect_exit 2 "${as_nobody[@]}" "$bin/popguard-agent" replay --pcap "$work/attack.pcap"
  grep -q -- "--no-prefilter" "$work/err" || fail "no hint: $(cat "$work/err")"
  expect_exit 0 "${as_nobody[@]}" "$bin/popguard-agent" replay --pcap "$work/attack.pcap" --no-prefilter
fi
echo "cli_test: all passed"

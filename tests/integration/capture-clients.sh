#!/usr/bin/env bash
# capture-clients.sh OUTDIR
#
# Captures real POP3 sessions of real clients (python poplib, curl, fetchmail)
# against a real dovecot 2.3, one pcap per client run, into OUTDIR. They feed
# false-positive and differential tests of the detection engine.
#
# dovecot runs in network namespace pgt-mail (10.77.0.2) from a private temp
# dir; clients run on the host side of the veth pgt-mail0 (10.77.0.1), where
# tcpdump listens. Offloads are off on the veth so captures hold wire-sized
# segments, except py-basic-gso.pcap, taken with them on (GSO packets up to
# 64 KiB, as on real hosts). Every client run is checked (exit status, content
# retrieved, dovecot's login line); the script fails naming the client if one
# did not work. Everything is torn down on exit, also on failure.
#
# Needs root and the packages of deploy/install-deps.sh. See README.md here.
set -euo pipefail

PROG=capture-clients.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

NS=pgt-mail
HOST_IF=pgt-mail0          # host side: clients and tcpdump
NS_IF=pgt-mail1            # namespace side: dovecot
HOST_IP=10.77.0.1
SRV=10.77.0.2

# Users. alice: 40-character password; bob: short one; the long one: a long
# address and a 256-byte password. None may contain ':' (passwd-file) or
# '"' / '\' (fetchmailrc).
ALICE=alice@example.org
ALICE_PW='Vq7#pLm2!xR9wz%Kd4Tn8&Yb3Hc6Je1Gu5Fa0Sk_'
BOB=bob
BOB_PW='hunter2'
LONG_USER=firstname.middlename.lastname.accounts-payable@mail.subdomain.example-university.org
LONG_PW=$(printf 'correct-horse-battery-staple-%02d.' 1 2 3 4 5 6 7 8)

# fd 3 = our stderr, also while a client function runs with 2> redirected
# (a signal's trap runs inside that redirection).
exec 3>&2
log() { echo "$PROG: $*" >&3; }
die() { log "$*"; exit 1; }

[[ $# -eq 1 ]] || { echo "usage: $PROG OUTDIR" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, veth, tcpdump)"
for tool in dovecot ip ethtool tcpdump openssl python3 curl fetchmail ss; do
  command -v "$tool" >/dev/null || die "$tool not found: run deploy/install-deps.sh"
done
(( ${#ALICE_PW} == 40 && ${#LONG_PW} >= 200 )) || die "bad test passwords"
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)

WORK=""
DOVECOT_PID=""
TCPDUMP_PID=""
MADE_NS=0
START=$SECONDS

# Stops a process we started, by pid: SIGNAL first, KILL after ~5 s.
stop_pid() {
  local pid=$1 sig=$2 i
  kill "-$sig" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  [[ -n $TCPDUMP_PID ]] && stop_pid "$TCPDUMP_PID" INT
  [[ -n $DOVECOT_PID ]] && stop_pid "$DOVECOT_PID" TERM
  if ((MADE_NS)); then
    # dovecot's children, should the master have died without them.
    local pid
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    ip link del "$HOST_IF" 2>/dev/null
  fi
  [[ -n $WORK ]] && rm -rf "$WORK"
  if ((rc != 0)); then log "FAILED (exit $rc); namespace and temp dir removed"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ network
if ip netns list | awk '{print $1}' | grep -qx "$NS" || ip link show "$HOST_IF" >/dev/null 2>&1; then
  die "$NS or $HOST_IF exists already (another run, or one that died): run tests/cleanup.sh"
fi
MADE_NS=1
ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip addr add "$HOST_IP/24" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip -n "$NS" addr add "$SRV/24" dev "$NS_IF"
ip -n "$NS" link set "$NS_IF" up
ip -n "$NS" link set lo up

# Offloads: off = every frame on the capture is one a wire would carry, with
# checksums computed in software; on = the veth default (TSO/GSO super-packets,
# partial checksums), which is what captures on a real sender look like.
set_offloads() {
  ethtool -K "$HOST_IF" tx "$1" tso "$1" gso "$1" gro off >/dev/null 2>&1 \
    || die "ethtool -K $HOST_IF $1 failed"
  ip netns exec "$NS" ethtool -K "$NS_IF" tx "$1" tso "$1" gso "$1" gro off >/dev/null 2>&1 \
    || die "ethtool -K $NS_IF $1 failed"
}

# ------------------------------------------------------------------ dovecot
WORK=$(mktemp -d /tmp/pgt-mail.XXXXXX)
chmod 755 "$WORK"          # dovecot's unprivileged processes traverse it
CONF=$WORK/dovecot.conf
DLOG=$WORK/dovecot.log
MAIL=$WORK/mail

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 30 \
  -subj /CN=mail.example.org -addext "subjectAltName=DNS:mail.example.org,IP:$SRV" \
  >/dev/null 2>&1 || die "openssl could not make the certificate"

{
  echo "$ALICE:{PLAIN}$ALICE_PW"
  echo "$BOB:{PLAIN}$BOB_PW"
  echo "$LONG_USER:{PLAIN}$LONG_PW"
} >"$WORK/passwd"
chown root:dovecot "$WORK/passwd"
chmod 640 "$WORK/passwd"

python3 "$HERE/gen_mail.py" "$MAIL" "$ALICE" "$BOB" "$LONG_USER" \
  || die "gen_mail.py could not fill the maildirs"
chown -R nobody:nogroup "$MAIL"
count_mail() { find "$MAIL" -path '*/cur/*' -type f -o -path '*/new/*' -type f | wc -l; }
STORED=$(count_mail)

cat >"$CONF" <<EOF
protocols = pop3
listen = $SRV
base_dir = $WORK/run
state_dir = $WORK/state
instance_name = pgt-mail
log_path = $DLOG
auth_verbose = yes
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 digest-md5 apop
passdb {
  driver = passwd-file
  args = $WORK/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$MAIL/%u
}
mail_location = maildir:$MAIL/%u
first_valid_uid = 0
ssl = yes
ssl_cert = <$WORK/cert.pem
ssl_key = <$WORK/key.pem
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 995
    ssl = yes
  }
}
EOF
mkdir -p "$WORK/state"

ip netns exec "$NS" dovecot -F -c "$CONF" >>"$DLOG" 2>&1 3>&- &
DOVECOT_PID=$!
for ((i = 0; ; i++)); do
  kill -0 "$DOVECOT_PID" 2>/dev/null || { cat "$DLOG" >&2; DOVECOT_PID=""; die "dovecot exited at start"; }
  n=$(ip netns exec "$NS" ss -Hltn "( sport = :110 or sport = :995 )" | wc -l)
  ((n == 2)) && break
  ((i < 100)) || { tail -n 20 "$DLOG" >&2; die "dovecot is not listening on 110 and 995 after 10 s"; }
  sleep 0.1
done
log "dovecot $(dovecot --version | cut -d' ' -f1) listening on $SRV:110 and :995"

# ------------------------------------------------------------------ captures
TCPDUMP_ERR=$WORK/tcpdump.err
WRITTEN=()

start_tcpdump() {
  local file=$1 i
  : >"$TCPDUMP_ERR"
  # A large buffer: GSO frames of tens of KiB arrive in bursts, and a frame
  # tcpdump drops is a hole in the capture, not in the traffic.
  tcpdump -i "$HOST_IF" -nn -Z root --immediate-mode -B 65536 -w "$file" \
    'tcp port 110 or tcp port 995' 2>"$TCPDUMP_ERR" 3>&- &
  TCPDUMP_PID=$!
  for ((i = 0; ; i++)); do
    grep -q "listening on" "$TCPDUMP_ERR" && return 0
    kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$TCPDUMP_ERR" >&2; TCPDUMP_PID=""; die "tcpdump exited"; }
    ((i < 100)) || die "tcpdump did not start listening within 10 s"
    sleep 0.1
  done
}

stop_tcpdump() {
  local dropped
  sleep 0.3               # let the last FIN/ACK of the session go by
  stop_pid "$TCPDUMP_PID" INT
  TCPDUMP_PID=""
  dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$TCPDUMP_ERR")
  [[ ${dropped:-0} -eq 0 ]] || die "tcpdump dropped $dropped packets: the capture has holes"
}

# in_order FILE: every TCP direction's data in FILE comes in sequence. On
# a loaded machine tcpdump may write a veth's frames out of the order they
# crossed it; the sessions here are meant as the wire had them (reordering
# has tests of its own).
in_order() {
  tcpdump -nn -S -r "$1" 2>/dev/null | awk '
    { dir = $3 " " $5; seq = "" }
    / seq [0-9]+:[0-9]+,/ { match($0, / seq [0-9]+:[0-9]+,/); seq = substr($0, RSTART + 5, RLENGTH - 6) }
    seq != "" {
      split(seq, r, ":")
      if (dir in end && r[1] + 0 > end[dir] + 0) bad = 1
      if (!(dir in end) || r[2] + 0 > end[dir] + 0) end[dir] = r[2]
    }
    END { exit bad }'
}

# capture NAME LOGIN_REGEX COMMAND... : runs COMMAND under a fresh capture
# OUTDIR/NAME.pcap, taken again (up to five times) if it came out of order.
# COMMAND's exit status says if the client worked; the dovecot log lines it
# caused must match LOGIN_REGEX (grep -E) too.
capture() {
  local name=$1 want=$2 file=$OUTDIR/$1.pcap out=$WORK/$1.out rc=0 before i attempt
  shift 2
  [[ $name =~ ${PGT_ONLY:-.} ]] || return 0
  for ((attempt = 1; ; attempt++)); do
    before=$(wc -l <"$DLOG")
    start_tcpdump "$file"
    rc=0
    "$@" >"$out" 2>&1 || rc=$?
    stop_tcpdump
    if ((rc != 0 || attempt >= 5)) || in_order "$file"; then break; fi
    log "client $name: capture $attempt came out of order; taking it again"
  done
  ((rc != 0)) || in_order "$file" || die "client $name: five captures came out of order"
  if ((rc != 0)); then
    log "client $name FAILED (exit $rc): $*"
    sed 's/^/  client: /' "$out" | tail -n 25 >&2
    tail -n +"$((before + 1))" "$DLOG" | sed 's/^/  dovecot: /' >&2
    exit 1
  fi
  for ((i = 0; ; i++)); do   # the log process may lag a little
    tail -n +"$((before + 1))" "$DLOG" | grep -Eq -- "$want" && break
    if ((i >= 20)); then
      log "client $name: exit 0 but dovecot's log lacks /$want/:"
      tail -n +"$((before + 1))" "$DLOG" | sed 's/^/  dovecot: /' >&2
      exit 1
    fi
    sleep 0.1
  done
  local packets big
  tcpdump -nn -r "$file" >/dev/null 2>"$WORK/read.err" \
    || die "client $name: $file is unreadable: $(cat "$WORK/read.err")"
  packets=$(tcpdump -nn -r "$file" 2>/dev/null | wc -l)
  big=$(tcpdump -nn -r "$file" 'greater 1515' 2>/dev/null | wc -l)
  ((packets > 0)) || die "client $name: $file holds no packets"
  WRITTEN+=("$name")
  local logins note=""
  logins=$(tail -n +"$((before + 1))" "$DLOG" | grep -o 'method=[A-Z0-9-]*' | sort -u | paste -sd, -)
  if [[ $name == *-gso ]]; then
    ((big > 0)) || log "warning: $file holds no packet larger than 1514 bytes (no GSO here?)"
  else
    ((big == 0)) || die "client $name: $file holds $big packets larger than 1514 bytes with offloads off"
  fi
  ((big == 0)) || note="; $big larger than 1514 bytes (GSO)"
  log "wrote $file: $packets packets (${logins:-no login}$note)"
}

# dovecot's login line for USER with METHOD. dovecot cuts user names in it
# after 80 characters, so only the first 60 are matched.
login_re() {
  local u=${1:0:60}
  printf 'Login: user=<%s[^>]*>, method=%s' "${u//./[.]}" "$2"
}

py() { python3 "$HERE/py_clients.py" "$@"; }

# curl writes what it retrieved to $WORK/curl.body; CHECK is check-retr or check-list.
curl_run() {
  local check=$1 maildir=$2
  shift 2
  local rc=0
  rm -f "$WORK/curl.body"
  curl -v -sS --max-time 30 -o "$WORK/curl.body" "$@" || rc=$?
  ((rc == 0)) || { echo "curl exit status $rc"; return "$rc"; }
  py "$check" "$WORK/curl.body" --maildir "$maildir"
}

# fetchmail with a temporary rcfile; every message goes into a BSMTP batch.
fetchmail_run() {
  local maildir=$1 rc=0
  shift
  local home=$WORK/fetchmail
  rm -rf "$home"
  mkdir -m 700 "$home"
  printf '%s\n' "$@" >"$home/fetchmailrc"
  chmod 600 "$home/fetchmailrc"
  FETCHMAILHOME=$home fetchmail -f "$home/fetchmailrc" --nosyslog -v \
    --bsmtp "$home/batch.bsmtp" --idfile "$home/fetchids" || rc=$?
  # 0: mail retrieved; anything else (1 = no mail) is a failure here.
  ((rc == 0)) || { echo "fetchmail exit status $rc"; return 1; }
  py check-bsmtp "$home/batch.bsmtp" --maildir "$maildir"
}

A_DIR=$MAIL/$ALICE
B_DIR=$MAIL/$BOB
L_DIR=$MAIL/$LONG_USER
A=(--user "$ALICE" --password "$ALICE_PW" --maildir "$A_DIR")
B=(--user "$BOB" --password "$BOB_PW" --maildir "$B_DIR")
L=(--user "$LONG_USER" --password "$LONG_PW" --maildir "$L_DIR")

# The one capture with offloads on: large RETRs leave as GSO super-packets.
set_offloads on
capture py-basic-gso "$(login_re "$ALICE" PLAIN)" py basic "${A[@]}"
set_offloads off

# python poplib
capture py-basic                   "$(login_re "$ALICE" PLAIN)"  py basic "${A[@]}"
capture py-lowercase-pipelined     "$(login_re "$BOB" PLAIN)"    py lowercase-pipelined "${B[@]}"
capture py-pipelined-login         "$(login_re "$BOB" PLAIN)"    py pipelined-login "${B[@]}"
capture py-stls                    "$(login_re "$ALICE" PLAIN).*, TLS," py stls "${A[@]}"
capture py-pop3s                   "$(login_re "$BOB" PLAIN).*, TLS,"   py pop3s "${B[@]}"
capture py-auth-plain-ir           "$(login_re "$ALICE" PLAIN)"  py auth-plain-ir "${A[@]}"
capture py-auth-plain-continuation "$(login_re "$BOB" PLAIN)"    py auth-plain-continuation "${B[@]}"
capture py-auth-login              "$(login_re "$ALICE" LOGIN)"  py auth-login "${A[@]}"
capture py-auth-digest-md5         "$(login_re "$ALICE" DIGEST-MD5)" py auth-digest-md5 "${A[@]}"
capture py-long-login              "$(login_re "$LONG_USER" PLAIN)" py long-login "${L[@]}"
capture py-xoauth2-rejected        "$(login_re "$ALICE" PLAIN)"  py xoauth2-rejected "${A[@]}"
capture py-apop                    "$(login_re "$BOB" APOP)"     py apop "${B[@]}"

# curl
capture curl-list          "$(login_re "$BOB" '[A-Z0-9-]+')" curl_run check-list "$B_DIR" "pop3://$SRV/" -u "$BOB:$BOB_PW"
capture curl-retr          "$(login_re "$ALICE" '[A-Z0-9-]+')" curl_run check-retr "$A_DIR" "pop3://$SRV/3" -u "$ALICE:$ALICE_PW"
capture curl-cram-md5      "$(login_re "$BOB" CRAM-MD5)"     curl_run check-retr "$B_DIR" "pop3://$SRV/1" -u "$BOB:$BOB_PW" --login-options AUTH=CRAM-MD5
# curl 7.88 (Debian 12) cannot do DIGEST-MD5 with dovecot: it reads the quoted
# algorithm="md5-sess" with its quotes and cancels with "*" (curl issue 11369,
# fixed in 8.2.0). The aborted exchange is legitimate traffic too; a newer curl
# logs in, and that is accepted as well. py-auth-digest-md5 has a full login.
curl_digest() {
  local rc=0
  curl_run check-retr "$A_DIR" "pop3://$SRV/2" -u "$ALICE:$ALICE_PW" --login-options AUTH=DIGEST-MD5 || rc=$?
  ((rc == 0)) || grep -q '^> \*' "$WORK/curl-digest-md5.out"
}
capture curl-digest-md5    "$(login_re "$ALICE" DIGEST-MD5)|SASL auth.*method=DIGEST-MD5" curl_digest
capture curl-plain         "$(login_re "$LONG_USER" PLAIN)"  curl_run check-retr "$L_DIR" "pop3://$SRV/1" -u "$LONG_USER:$LONG_PW" --login-options AUTH=PLAIN
capture curl-login         "$(login_re "$ALICE" LOGIN)"      curl_run check-retr "$A_DIR" "pop3://$SRV/6" -u "$ALICE:$ALICE_PW" --login-options AUTH=LOGIN
capture curl-apop          "$(login_re "$BOB" APOP)"         curl_run check-retr "$B_DIR" "pop3://$SRV/2" -u "$BOB:$BOB_PW" --login-options AUTH=+APOP
capture curl-stls          "$(login_re "$ALICE" '[A-Z0-9-]+').*, TLS," curl_run check-retr "$A_DIR" "pop3://$SRV/5" -u "$ALICE:$ALICE_PW" --ssl-reqd -k
capture curl-pop3s         "$(login_re "$BOB" '[A-Z0-9-]+').*, TLS,"   curl_run check-retr "$B_DIR" "pop3s://$SRV/4" -u "$BOB:$BOB_PW" -k

# fetchmail 6.4 (sslproto '' = no opportunistic STLS)
capture fetchmail-plain "$(login_re "$BOB" '[A-Z0-9-]+')" fetchmail_run "$B_DIR" \
  "poll $SRV protocol pop3 port 110 auth password" \
  "  user \"$BOB\" password \"$BOB_PW\" options keep fetchall sslproto ''"
capture fetchmail-stls "$(login_re "$ALICE" '[A-Z0-9-]+').*, TLS," fetchmail_run "$A_DIR" \
  "poll $SRV protocol pop3 port 110" \
  "  user \"$ALICE\" password \"$ALICE_PW\" options keep fetchall sslproto 'tls1.2+' no sslcertck"
capture fetchmail-pop3s "$(login_re "$LONG_USER" '[A-Z0-9-]+').*, TLS," fetchmail_run "$L_DIR" \
  "poll $SRV protocol pop3 port 995" \
  "  user \"$LONG_USER\" password \"$LONG_PW\" options keep fetchall ssl no sslcertck"

# No client may have deleted mail: each must see the same mailboxes.
(($(count_mail) == STORED)) || die "messages were deleted: $(count_mail) left of $STORED"

cp "$DLOG" "$OUTDIR/dovecot.log"
log "${#WRITTEN[@]} captures in $OUTDIR in $((SECONDS - START)) s (dovecot's log: dovecot.log)"

#!/usr/bin/env python3
"""POP3 client sessions (python poplib) and content checks for capture-clients.sh.

Usage:
  py_clients.py SESSION --host H --user U --password P --maildir DIR [--port N]
  py_clients.py check-retr FILE --maildir DIR       (a message retrieved by curl)
  py_clients.py check-list FILE --maildir DIR       (a LIST retrieved by curl)
  py_clients.py check-bsmtp FILE --maildir DIR      (what fetchmail --bsmtp wrote)

Every session checks what it got against the maildir DIR it reads (message
count, sizes, exact content of each RETR), and exits non-zero with a message on
stderr when anything is off. No session deletes mail: each ends with QUIT and
no DELE, so every run sees the same mailbox.
"""
import argparse
import base64
import glob
import os
import poplib
import re
import socket
import ssl
import sys


class Fail(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Fail(what)


def ok(resp, what):
    if isinstance(resp, tuple):
        resp = resp[0]
    expect(resp.startswith(b"+OK"), f"{what}: expected +OK, got {resp[:200]!r}")
    return resp


def maildir_messages(maildir):
    """The messages as stored (LF line ends), as a set of bytes."""
    out = []
    for f in sorted(glob.glob(os.path.join(maildir, "cur", "*")) +
                    glob.glob(os.path.join(maildir, "new", "*"))):
        with open(f, "rb") as fh:
            out.append(fh.read())
    expect(out, f"no messages in {maildir}")
    return out


def joined(lines):
    """poplib's RETR lines (dot-unstuffed, no line ends) back into a file."""
    return b"\n".join(lines) + b"\n"


def unverified_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check_stat_list(p, stored):
    count, size = p.stat()
    expect(count == len(stored), f"STAT says {count} messages, maildir has {len(stored)}")
    wire_sizes = sorted(len(m) + m.count(b"\n") for m in stored)
    resp, listing, _ = p.list()
    ok(resp, "LIST")
    sizes = sorted(int(l.split()[1]) for l in listing)
    expect(sizes == wire_sizes, f"LIST sizes {sizes} != stored {wire_sizes}")
    expect(size == sum(wire_sizes), f"STAT size {size} != {sum(wire_sizes)}")
    return count


def retr_all(p, count, stored):
    for i in range(1, count + 1):
        resp, lines, _ = p.retr(i)
        ok(resp, f"RETR {i}")
        expect(joined(lines) in stored, f"RETR {i}: content differs from the maildir")


# ---------------------------------------------------------------- sessions

def s_basic(a, stored):
    """USER/PASS, CAPA, STAT, LIST, UIDL, TOP and RETR of every message, QUIT."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    ok(p.getwelcome(), "greeting")
    caps = p.capa()
    expect("UIDL" in caps, f"CAPA lacks UIDL: {caps}")
    ok(p.user(a.user), "USER")
    ok(p.pass_(a.password), "PASS")
    count = check_stat_list(p, stored)
    resp, uidls, _ = p.uidl()
    ok(resp, "UIDL")
    expect(len(uidls) == count, "UIDL count")
    ok(p.uidl(1), "UIDL 1")
    ok(p.list(count), f"LIST {count}")
    for i in range(1, count + 1):
        resp, lines, _ = p.top(i, 5)
        ok(resp, f"TOP {i} 5")
        expect(any(l.lower().startswith(b"message-id:") for l in lines),
               f"TOP {i}: no Message-ID header")
    retr_all(p, count, stored)
    ok(p.noop(), "NOOP")
    ok(p.quit(), "QUIT")


def s_lowercase_pipelined(a, stored):
    """Lower-case commands sent raw, then several commands in one write."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    ok(p.getwelcome(), "greeting")
    ok(p._longcmd("capa"), "capa")
    ok(p._shortcmd("user " + a.user), "user")
    ok(p._shortcmd("pass " + a.password), "pass")
    ok(p._shortcmd("stat"), "stat")
    resp, listing, _ = p._longcmd("list")
    ok(resp, "list")
    expect(len(listing) == len(stored), "list count")
    ok(p._longcmd("uidl"), "uidl")
    resp, lines, _ = p._longcmd("retr 1")
    ok(resp, "retr 1")
    expect(joined(lines) in stored, "retr 1: content differs")
    ok(p._longcmd("top 2 0"), "top 2 0")
    ok(p._shortcmd("noop"), "noop")
    # Pipelining (RFC 2449 PIPELINING): one write, then read the answers in order.
    p.sock.sendall(b"STAT\r\nLIST 1\r\nUIDL\r\nTOP 1 3\r\nRETR 2\r\nnoop\r\nlist\r\n")
    ok(p._getresp(), "pipelined STAT")
    ok(p._getresp(), "pipelined LIST 1")
    ok(p._getlongresp(), "pipelined UIDL")
    ok(p._getlongresp(), "pipelined TOP 1 3")
    resp, lines, _ = p._getlongresp()
    ok(resp, "pipelined RETR 2")
    expect(joined(lines) in stored, "pipelined RETR 2: content differs")
    ok(p._getresp(), "pipelined noop")
    resp, listing, _ = p._getlongresp()
    ok(resp, "pipelined list")
    expect(len(listing) == len(stored), "pipelined list count")
    ok(p._shortcmd("quit"), "quit")
    p.close()


def s_pipelined_login(a, stored):
    """CAPA, USER, PASS and STAT in a single write before login."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    ok(p.getwelcome(), "greeting")
    p.sock.sendall(f"CAPA\r\nUSER {a.user}\r\nPASS {a.password}\r\nSTAT\r\nLIST\r\n".encode())
    resp, caps, _ = p._getlongresp()
    ok(resp, "pipelined CAPA")
    expect(b"PIPELINING" in caps, f"CAPA lacks PIPELINING: {caps}")
    ok(p._getresp(), "pipelined USER")
    ok(p._getresp(), "pipelined PASS")
    resp = ok(p._getresp(), "pipelined STAT")
    expect(int(resp.split()[1]) == len(stored), "pipelined STAT count")
    resp, listing, _ = p._getlongresp()
    ok(resp, "pipelined LIST")
    expect(len(listing) == len(stored), "pipelined LIST count")
    ok(p.quit(), "QUIT")


def s_stls(a, stored):
    """Port 110, CAPA shows STLS, STLS, then CAPA/USER/PASS/RETR inside TLS."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    caps = p.capa()
    expect("STLS" in caps, f"CAPA lacks STLS: {caps}")
    ok(p.stls(context=unverified_tls()), "STLS")
    p.capa()
    ok(p.user(a.user), "USER")
    ok(p.pass_(a.password), "PASS")
    count = check_stat_list(p, stored)
    retr_all(p, count, stored)
    ok(p.quit(), "QUIT")


def s_pop3s(a, stored):
    """Implicit TLS on 995."""
    p = poplib.POP3_SSL(a.host, a.port, timeout=20, context=unverified_tls())
    ok(p.getwelcome(), "greeting")
    ok(p.user(a.user), "USER")
    ok(p.pass_(a.password), "PASS")
    count = check_stat_list(p, stored)
    ok(p.uidl(), "UIDL")
    retr_all(p, count, stored)
    ok(p.quit(), "QUIT")


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def s_auth_plain_ir(a, stored):
    """AUTH PLAIN with the credentials as initial response (RFC 5034)."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    p.capa()
    ok(p._shortcmd("AUTH PLAIN " + b64(f"\0{a.user}\0{a.password}")), "AUTH PLAIN")
    count = check_stat_list(p, stored)
    resp, lines, _ = p.retr(count)
    ok(resp, f"RETR {count}")
    expect(joined(lines) in stored, "RETR: content differs")
    ok(p.quit(), "QUIT")


def s_auth_plain_continuation(a, stored):
    """AUTH PLAIN, empty challenge, credentials on the next line."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    p._putcmd("AUTH PLAIN")
    resp = p._getline()[0]
    expect(resp.startswith(b"+"), f"AUTH PLAIN: expected '+ ', got {resp!r}")
    ok(p._shortcmd(b64(f"\0{a.user}\0{a.password}")), "AUTH PLAIN response")
    check_stat_list(p, stored)
    ok(p.quit(), "QUIT")


def s_auth_login(a, stored):
    """AUTH LOGIN: base64 user and password answering two challenges."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    p.capa()
    p._putcmd("AUTH LOGIN")
    ch = p._getline()[0]
    expect(ch.startswith(b"+ "), f"AUTH LOGIN: expected a challenge, got {ch!r}")
    p._putcmd(b64(a.user))
    ch = p._getline()[0]
    expect(ch.startswith(b"+ "), f"AUTH LOGIN user: expected a challenge, got {ch!r}")
    ok(p._shortcmd(b64(a.password)), "AUTH LOGIN password")
    count = check_stat_list(p, stored)
    retr_all(p, count, stored)
    ok(p.quit(), "QUIT")


def s_auth_digest_md5(a, stored):
    """AUTH DIGEST-MD5 (RFC 2831), qop=auth, computed here step by step."""
    import hashlib
    p = poplib.POP3(a.host, a.port, timeout=20)
    p.capa()
    p._putcmd("AUTH DIGEST-MD5")
    ch = p._getline()[0]
    expect(ch.startswith(b"+ "), f"AUTH DIGEST-MD5: expected a challenge, got {ch!r}")
    pairs = re.findall(r'([a-z-]+)=(?:"([^"]*)"|([^,]*))', base64.b64decode(ch[2:]).decode())
    chal = {k: quoted or bare for k, quoted, bare in pairs}
    expect("auth" in chal.get("qop", "").split(","), f"DIGEST-MD5: qop {chal.get('qop')!r}")
    realm, nonce = chal.get("realm", ""), chal["nonce"]
    cnonce = base64.b64encode(os.urandom(18)).decode()
    uri = "pop/mail.example.org"
    md5 = lambda b: hashlib.md5(b).digest()
    hexmd5 = lambda b: hashlib.md5(b).hexdigest()
    a1 = md5(f"{a.user}:{realm}:{a.password}".encode()) + f":{nonce}:{cnonce}".encode()
    a2 = f"AUTHENTICATE:{uri}".encode()
    resp = hexmd5(f"{hexmd5(a1)}:{nonce}:00000001:{cnonce}:auth:{hexmd5(a2)}".encode())
    p._putcmd(b64(f'username="{a.user}",realm="{realm}",nonce="{nonce}",'
                  f'cnonce="{cnonce}",nc=00000001,qop=auth,digest-uri="{uri}",'
                  f'response={resp},charset=utf-8'))
    ch = p._getline()[0]
    expect(ch.startswith(b"+ ") and base64.b64decode(ch[2:]).startswith(b"rspauth="),
           f"DIGEST-MD5: expected rspauth, got {ch!r}")
    ok(p._shortcmd(""), "DIGEST-MD5 final")
    count = check_stat_list(p, stored)
    retr_all(p, count, stored)
    ok(p.quit(), "QUIT")


def s_long_login(a, stored):
    """Long address and 200+ byte password, first by USER/PASS, then AUTH PLAIN."""
    expect(len(a.password) >= 200, "long_login wants a 200+ byte password")
    p = poplib.POP3(a.host, a.port, timeout=20)
    ok(p.user(a.user), "USER")
    ok(p.pass_(a.password), "PASS")
    count = check_stat_list(p, stored)
    retr_all(p, count, stored)
    ok(p.quit(), "QUIT")
    # Second connection: the same credentials as one AUTH PLAIN line (> 300 bytes).
    p = poplib.POP3(a.host, a.port, timeout=20)
    line = "AUTH PLAIN " + b64(f"\0{a.user}\0{a.password}")
    expect(len(line) > 255, "AUTH PLAIN line should exceed 255 bytes")
    ok(p._shortcmd(line), "AUTH PLAIN (long)")
    check_stat_list(p, stored)
    ok(p.quit(), "QUIT")


def s_xoauth2_rejected(a, stored):
    """An XOAUTH2 line > 255 bytes (no such mechanism here: -ERR), then USER/PASS."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    p.capa()
    # Shaped like a Google access token: "ya29." and ~200 URL-safe characters.
    token = "ya29.a0AfB_" + base64.urlsafe_b64encode(bytes(range(150))).decode().rstrip("=")
    line = "AUTH XOAUTH2 " + b64(f"user={a.user}\x01auth=Bearer {token}\x01\x01")
    expect(len(line) > 255, "XOAUTH2 line should exceed 255 bytes")
    try:
        resp = p._shortcmd(line)
        raise Fail(f"AUTH XOAUTH2: expected -ERR, got {resp!r}")
    except poplib.error_proto as e:
        expect(str(e).startswith("b'-ERR") or "-ERR" in str(e), f"AUTH XOAUTH2: {e}")
    ok(p.user(a.user), "USER")
    ok(p.pass_(a.password), "PASS")
    check_stat_list(p, stored)
    ok(p.quit(), "QUIT")


def s_apop(a, stored):
    """APOP with the timestamp from the greeting."""
    p = poplib.POP3(a.host, a.port, timeout=20)
    expect(re.search(rb"<.+>", p.getwelcome()), f"no APOP timestamp in {p.getwelcome()!r}")
    ok(p.apop(a.user, a.password), "APOP")
    count = check_stat_list(p, stored)
    resp, lines, _ = p.retr(1)
    ok(resp, "RETR 1")
    expect(joined(lines) in stored, "RETR 1: content differs")
    ok(p.quit(), "QUIT")


SESSIONS = {
    "basic": s_basic,
    "lowercase-pipelined": s_lowercase_pipelined,
    "pipelined-login": s_pipelined_login,
    "stls": s_stls,
    "pop3s": s_pop3s,
    "auth-plain-ir": s_auth_plain_ir,
    "auth-plain-continuation": s_auth_plain_continuation,
    "auth-login": s_auth_login,
    "auth-digest-md5": s_auth_digest_md5,
    "long-login": s_long_login,
    "xoauth2-rejected": s_xoauth2_rejected,
    "apop": s_apop,
}

# ---------------------------------------------------------------- checks


def c_retr(path, stored):
    """curl's RETR output: CRLF ends, already dot-unstuffed."""
    data = open(path, "rb").read().replace(b"\r\n", b"\n")
    expect(data in stored, f"{path}: not one of the stored messages ({len(data)} bytes)")


def c_list(path, stored):
    lines = open(path, "rb").read().splitlines()
    expect(len(lines) == len(stored), f"{path}: {len(lines)} LIST lines, want {len(stored)}")


def c_bsmtp(path, stored):
    """fetchmail's BSMTP batch: each stored Message-ID appears once."""
    data = open(path, "rb").read()
    n = data.count(b"\r\nDATA\r\n") + data.startswith(b"DATA\r\n") + data.count(b"\nDATA\n")
    expect(n == len(stored), f"{path}: {n} messages, want {len(stored)}")
    for m in stored:
        mid = re.search(rb"^Message-ID: (<[^>]+>)", m, re.M | re.I).group(1)
        expect(data.count(mid) == 1, f"{path}: {mid.decode()} appears {data.count(mid)} times")


CHECKS = {"check-retr": c_retr, "check-list": c_list, "check-bsmtp": c_bsmtp}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=sorted(SESSIONS) + sorted(CHECKS))
    ap.add_argument("file", nargs="?")
    ap.add_argument("--host", default="10.77.0.2")
    ap.add_argument("--port", type=int)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--maildir", required=True)
    a = ap.parse_args()
    try:
        stored = maildir_messages(a.maildir)
        if a.what in CHECKS:
            expect(a.file, f"{a.what} needs a FILE")
            CHECKS[a.what](a.file, stored)
        else:
            expect(a.user and a.password, "sessions need --user and --password")
            if a.port is None:
                a.port = 995 if a.what == "pop3s" else 110
            SESSIONS[a.what](a, stored)
    except (Fail, poplib.error_proto, OSError, socket.timeout) as e:
        print(f"py_clients.py {a.what}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

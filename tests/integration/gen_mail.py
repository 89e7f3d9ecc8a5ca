#!/usr/bin/env python3
"""Fills maildirs with deterministic, realistic messages for capture-clients.sh.

Usage: gen_mail.py MAILROOT USER [USER...]

Writes MAILROOT/USER/{cur,new,tmp}/ for each USER. The content depends only on
the user's position in the list and a fixed seed, so every run serves the same
bytes. Message sizes lie between 2 KB and 120 KB (checked). Among them:
multipart messages with base64 attachments, bodies with lines that start with
"." (dot-stuffed on the wire), and one body full of text that looks like POP3
commands and format strings, which a sensor must not flag.
"""
import os
import random
import sys
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

MIN_SIZE = 2 * 1024
MAX_SIZE = 120 * 1024

WORDS = ("the quarterly report attached figures meeting agenda budget review "
         "please find below notes from yesterday call regarding project "
         "timeline delivery schedule customer feedback server migration "
         "weekend maintenance window backup restore mailbox quota invoice "
         "payment reminder thanks regards best kind").split()


def prose(rng, n_words, width=72):
    """Plain text wrapped at `width`, deterministic for a given rng state."""
    lines, line = [], []
    for i in range(n_words):
        w = rng.choice(WORDS)
        if i == 0 or (line == [] and rng.random() < 0.1):
            w = w.capitalize()
        if sum(len(x) + 1 for x in line) + len(w) > width:
            lines.append(" ".join(line))
            line = []
        line.append(w)
        if rng.random() < 0.08:
            line[-1] += "."
            if rng.random() < 0.3:
                lines.append(" ".join(line))
                lines.append("")
                line = []
    if line:
        lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def base_headers(msg, rng, user, idx, subject):
    when = datetime(2024, 3, 4, 9, 15, tzinfo=timezone.utc) + timedelta(
        hours=7 * idx, minutes=rng.randrange(60))
    sender = rng.choice(["Dana Reyes <dana.reyes@example.com>",
                         "IT Helpdesk <helpdesk@corp.example.net>",
                         "billing@shop.example.com",
                         "\"Jörg Müller\" <joerg@example.de>"])
    msg["From"] = sender
    msg["To"] = user if "@" in user else f"{user}@example.org"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<pgt-{idx:02d}.{rng.randrange(10**8):08d}@mail.example.com>"
    msg["X-Mailer"] = "popguard capture generator"


def msg_plain(rng, user, idx):
    m = EmailMessage()
    base_headers(m, rng, user, idx, "Short note")
    m.set_content(prose(rng, 420))
    return m


def msg_dots(rng, user, idx):
    """Lines starting with '.': the server dot-stuffs them on the wire."""
    m = EmailMessage()
    base_headers(m, rng, user, idx, "Config snippet and a lone dot")
    body = prose(rng, 150)
    body += ("\nHere is the config, lines start with dots:\n"
             ".\n"
             "..\n"
             "...\n"
             ".hidden_file\n"
             ". leading dot and space\n"
             "./configure --prefix=/usr\n"
             "..\\..\\windows\\path\n\n")
    body += prose(rng, 200)
    body += ".\n-- \n.signature lives in ~/.signature\n"
    m.set_content(body, cte="7bit")
    return m


def msg_pop3_lookalike(rng, user, idx):
    """A body that reads like a POP3 dialogue and format-string probes."""
    m = EmailMessage()
    base_headers(m, rng, user, idx, "Re: mail client log from the support ticket")
    body = prose(rng, 80)
    body += (
        "\nThe customer pasted this transcript:\n\n"
        "+OK Dovecot ready.\n"
        "USER x\n"
        "+OK\n"
        "PASS hunter2\n"
        "-ERR [AUTH] Authentication failed.\n"
        "USER %s%s%n%s%n\n"
        "PASS %x%x%x%x%08x\n"
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb\n"
        "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB2RjlkZnQ0cW1UYzJOdmIzUmxja0JoZEhSaGRtbHpkR0V1WTI5dENnPT0BAQ==\n"
        "STAT\n"
        "+OK 2 320\n"
        "LIST\n"
        "RETR 1\n"
        "TOP 1 10\n"
        "UIDL\n"
        "DELE 1\n"
        "RSET\n"
        "QUIT\n"
        "user ../../../../etc/passwd\n"
        "USER " + "A" * 300 + "\n"
        "%s%s%s%s%s%s%s%s%s%s%n%n%n\n"
        "'; DROP TABLE users; --\n"
        "\\x90\\x90\\x90\\x90\\xcc\n\n")
    body += prose(rng, 150)
    m.set_content(body, cte="7bit")  # keep the look-alike lines verbatim
    return m


def msg_attachment(rng, user, idx, kb, filename, maintype, subtype):
    m = EmailMessage()
    base_headers(m, rng, user, idx, f"Documents: {filename}")
    m.set_content(prose(rng, 60))
    m.add_alternative(
        "<html><body><p>" + prose(rng, 60).replace("\n\n", "</p><p>")
        + "</p></body></html>\n", subtype="html")
    data = rng.randbytes(kb * 1024)
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m


def msg_multi_attach(rng, user, idx):
    m = EmailMessage()
    base_headers(m, rng, user, idx, "Photos from the offsite")
    m.set_content(prose(rng, 120))
    for n in range(3):
        m.add_attachment(rng.randbytes(9 * 1024 + n * 3000), maintype="image",
                         subtype="jpeg", filename=f"IMG_{4210 + n}.jpg")
    m.add_attachment(prose(rng, 300).encode(), maintype="text", subtype="plain",
                     filename="notes.txt")
    return m


MAKERS = [
    msg_plain,
    msg_dots,
    msg_pop3_lookalike,
    lambda r, u, i: msg_attachment(r, u, i, 30, "report-q1.pdf", "application", "pdf"),
    msg_multi_attach,
    lambda r, u, i: msg_attachment(r, u, i, 84, "slides.pptx", "application",
                                   "vnd.openxmlformats-officedocument.presentationml.presentation"),
]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: gen_mail.py MAILROOT USER [USER...]")
    root, users = sys.argv[1], sys.argv[2:]
    for uidx, user in enumerate(users):
        rng = random.Random(0x70677400 + uidx)
        mdir = os.path.join(root, user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mdir, sub), exist_ok=True)
        # First user gets every kind; the others a rotating handful.
        makers = MAKERS if uidx == 0 else [MAKERS[(uidx + k) % len(MAKERS)]
                                          for k in range(4)]
        for midx, make in enumerate(makers):
            msg = make(rng, user, midx)
            # Fixed boundaries: the email package draws random ones.
            for n, part in enumerate(msg.walk()):
                if part.is_multipart():
                    part.set_boundary(f"=_pgt_{uidx}_{midx}_{n}")
            data = msg.as_bytes()
            if not data.endswith(b"\n"):
                data += b"\n"
            # Size on the wire counts CRLF line ends.
            wire = len(data) + data.count(b"\n")
            if not MIN_SIZE <= wire <= MAX_SIZE:
                sys.exit(f"gen_mail.py: message {midx} of {user} is {wire} bytes, "
                         f"outside {MIN_SIZE}..{MAX_SIZE}")
            name = f"{1709543700 + midx}.M{midx}P{uidx}.pgt-mail:2,S"
            with open(os.path.join(mdir, "cur", name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()

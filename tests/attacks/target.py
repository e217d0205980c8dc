#!/usr/bin/env python3
"""A small SIP UAS/registrar over UDP that answers scanners the way a real PBX does.

Standard library only. Used by capture-scan.sh as the victim of sipvicious inside a
private network namespace; it never sends anything except responses to the address a
request came from.

Behaviour (enough for svmap, svwar and svcrack to work as against a real PBX):

- OPTIONS to the server or to a known user: 200 OK with Server, Allow, Accept, Supported;
  to an unknown user: 404.
- REGISTER (the To user is the address of record): unknown user 404; known user without
  credentials 401 with `WWW-Authenticate: Digest` (fresh nonce; MD5; qop="auth" unless
  --no-qop); correct Digest (MD5, with qop=auth or RFC 2069 style without it) 200 with the
  Contact echoed and Expires; wrong password 403; unknown or expired nonce 401 stale=true.
- INVITE to a known user: 100 Trying then 486 Busy Here; unknown user: 404.
- ACK: nothing. CANCEL: 200. BYE: 481. Any other method: 405 with Allow.

Responses copy every Via (the top one gets received= and, when asked for, rport=), From,
To (a tag is added to final responses), Call-ID and CSeq; Content-Length is exact.
Compact header forms (v f t i m l c k s) are understood.

Bounded: exits after --max-seconds or --max-requests, on SIGTERM or SIGINT, printing a
one-line summary (JSON) of what it received and sent to stdout.
"""

import argparse
import collections
import hashlib
import json
import os
import re
import select
import signal
import socket
import sys
import time

COMPACT = {
    "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
    "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
}
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
REASONS = {
    100: "Trying", 200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 481: "Call/Transaction Does Not Exist", 486: "Busy Here",
}


def parse_users(spec):
    """'100-109,200' -> ['100', ..., '109', '200']"""
    users = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            if hi.strip().isdigit() and lo.strip().isdigit():
                users.extend(str(n) for n in range(int(lo), int(hi) + 1))
                continue
        users.append(part)
    return users


def parse_message(data):
    """Returns (first_line, [(name_lower, raw_name, value)], body) or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    head, sep, body = text.partition("\r\n\r\n")
    if not sep:
        head, sep, body = text.partition("\n\n")
    lines = re.split(r"\r?\n", head)
    if not lines or not lines[0]:
        return None
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation line
            n, raw, v = headers[-1]
            headers[-1] = (n, raw, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        raw = name.strip()
        low = raw.lower()
        low = COMPACT.get(low, low)
        headers.append((low, raw, value.strip()))
    return lines[0], headers, body


def hget(headers, name):
    for n, _, v in headers:
        if n == name:
            return v
    return None


def hall(headers, name):
    out = []
    for n, _, v in headers:
        if n == name:
            # Via may hold several comma-separated values on one line.
            if name == "via":
                out.extend(x.strip() for x in re.split(r",(?=\s*SIP/)", v, flags=re.I))
            else:
                out.append(v)
    return out


def uri_user(value):
    """User part of the SIP URI in a header value or Request-URI, or '' if none."""
    if value is None:
        return ""
    m = re.search(r"<([^>]*)>", value)
    uri = m.group(1) if m else value.split(";", 1)[0].strip()
    m = re.match(r"sips?:([^@;>]*)@", uri, re.I)
    return m.group(1) if m else ""


def digest_params(value):
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {}
    for m in re.finditer(r'([A-Za-z-]+)\s*=\s*("([^"]*)"|[^,\s]+)', rest):
        params[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return params


def md5(s):
    return hashlib.md5(s.encode("utf-8")).hexdigest()


class Target:
    def __init__(self, args):
        self.args = args
        self.users = set(parse_users(args.users))
        self.passwords = {}
        for entry in args.password or []:
            user, eq, pw = entry.partition("=")
            if not eq:
                sys.exit("target: --password wants EXT=PASSWORD, got %r" % entry)
            self.users.add(user)
            self.passwords[user] = pw
        self.nonces = collections.OrderedDict()  # nonce -> issue time; bounded
        self.tag_counter = 0
        self.stats = {"received": 0, "sent": 0, "requests": collections.Counter(),
                      "responses": collections.Counter(), "registered": [],
                      "user_agents": collections.Counter(), "ignored": 0}

    def password_of(self, user):
        return self.passwords.get(user, self.args.default_password + user)

    def new_nonce(self):
        nonce = hashlib.md5(os.urandom(16)).hexdigest()
        self.nonces[nonce] = time.monotonic()
        while len(self.nonces) > 4096:
            self.nonces.popitem(last=False)
        return nonce

    def new_tag(self):
        self.tag_counter += 1
        return "%08x%04x" % (int.from_bytes(os.urandom(4), "big"), self.tag_counter & 0xFFFF)

    def response(self, code, headers, src, add_tag=True, extra=(), body=""):
        vias = hall(headers, "via")
        if vias:
            top = vias[0]
            top = re.sub(r";\s*received=[^;]*", "", top)
            top += ";received=%s" % src[0]
            top = re.sub(r";\s*rport(?=;|$)", ";rport=%d" % src[1], top)
            vias[0] = top
        to = hget(headers, "to") or ""
        if add_tag and code > 100 and not re.search(r";\s*tag=", to, re.I):
            to += ";tag=" + self.new_tag()
        lines = ["SIP/2.0 %d %s" % (code, REASONS.get(code, "Unknown"))]
        lines += ["Via: " + v for v in vias]
        lines.append("From: " + (hget(headers, "from") or ""))
        lines.append("To: " + to)
        lines.append("Call-ID: " + (hget(headers, "call-id") or ""))
        lines.append("CSeq: " + (hget(headers, "cseq") or ""))
        lines.append("Server: " + self.args.server)
        lines += list(extra)
        raw_body = body.encode("utf-8")
        lines.append("Content-Length: %d" % len(raw_body))
        msg = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + raw_body
        self.sock.sendto(msg, src)
        self.stats["sent"] += 1
        cseq_method = (hget(headers, "cseq") or "?").split()[-1]
        self.stats["responses"]["%d %s" % (code, cseq_method)] += 1

    def check_digest(self, method, user, auth):
        """'ok', 'wrong' or 'stale'."""
        p = digest_params(auth)
        if p is None or "nonce" not in p or "response" not in p:
            return "wrong"
        if p["nonce"] not in self.nonces:
            return "stale"
        if p.get("username") != user or p.get("realm") != self.args.realm:
            return "wrong"
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm != "MD5":
            return "wrong"
        ha1 = md5("%s:%s:%s" % (user, self.args.realm, self.password_of(user)))
        ha2 = md5("%s:%s" % (method, p.get("uri", "")))
        qop = p.get("qop")
        if qop and qop.lower() == "auth" and "cnonce" in p and "nc" in p:
            expected = md5(":".join([ha1, p["nonce"], p["nc"], p["cnonce"], "auth", ha2]))
        else:
            # RFC 2069 form (sipvicious sends qop=auth without cnonce/nc when the
            # challenge had no qop: the response is computed this way then).
            expected = md5("%s:%s:%s" % (ha1, p["nonce"], ha2))
        return "ok" if p["response"].lower() == expected else "wrong"

    def challenge(self, headers, src, stale=False):
        value = 'Digest realm="%s", nonce="%s", algorithm=MD5' % (self.args.realm, self.new_nonce())
        if not self.args.no_qop:
            value += ', qop="auth"'
        if stale:
            value += ", stale=true"
        self.response(401, headers, src, extra=["WWW-Authenticate: " + value])

    def handle(self, data, src):
        parsed = parse_message(data)
        if parsed is None:
            self.stats["ignored"] += 1
            return
        first, headers, _body = parsed
        parts = first.split(" ")
        if len(parts) != 3 or not parts[2].upper().startswith("SIP/2.0") or first.startswith("SIP/"):
            self.stats["ignored"] += 1  # a response or garbage: a PBX would drop it
            return
        method, ruri = parts[0].upper(), parts[1]
        for required in ("via", "from", "to", "call-id", "cseq"):
            if hget(headers, required) is None:
                self.stats["ignored"] += 1
                return
        self.stats["requests"][method] += 1
        ua = hget(headers, "user-agent")
        if ua:
            self.stats["user_agents"][ua] += 1

        if method == "ACK":
            return
        if method == "OPTIONS":
            user = uri_user(ruri)
            if user and user not in self.users:
                self.response(404, headers, src)
            else:
                self.response(200, headers, src, extra=[
                    "Allow: " + ALLOW, "Accept: application/sdp",
                    "Supported: replaces, timer", "Accept-Language: en"])
        elif method == "REGISTER":
            user = uri_user(hget(headers, "to"))
            if user not in self.users:
                self.response(404, headers, src)
                return
            auth = hget(headers, "authorization")
            if auth is None:
                self.challenge(headers, src)
                return
            verdict = self.check_digest(method, user, auth)
            if verdict == "stale":
                self.challenge(headers, src, stale=True)
            elif verdict == "wrong":
                self.response(403, headers, src)
            else:
                contact = hget(headers, "contact")
                extra = ["Expires: 3600", "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())]
                if contact and contact != "*":
                    extra.insert(0, "Contact: %s;expires=3600" % contact)
                self.response(200, headers, src, extra=extra)
                self.stats["registered"].append(user)
        elif method == "INVITE":
            user = uri_user(ruri)
            if user not in self.users:
                self.response(404, headers, src)
                return
            self.response(100, headers, src, add_tag=False)
            self.response(486, headers, src)
        elif method == "CANCEL":
            self.response(200, headers, src)
        elif method == "BYE":
            self.response(481, headers, src)
        else:
            self.response(405, headers, src, extra=["Allow: " + ALLOW])

    def run(self):
        host, _, port = self.args.bind.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, int(port)))
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        deadline = time.monotonic() + self.args.max_seconds
        print("target: listening on %s:%s, users %s, realm %s, qop %s"
              % (host, port, ",".join(sorted(self.users, key=lambda u: (len(u), u))),
                 self.args.realm, "none" if self.args.no_qop else "auth"), flush=True)
        while not stop:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stats["received"] >= self.args.max_requests:
                break
            try:
                ready, _, _ = select.select([self.sock], [], [], min(remaining, 0.5))
            except InterruptedError:
                continue
            if not ready:
                continue
            data, src = self.sock.recvfrom(65535)
            self.stats["received"] += 1
            try:
                self.handle(data, src[:2])
            except OSError as err:
                print("target: send failed: %s" % err, file=sys.stderr, flush=True)
        s = dict(self.stats)
        for k in ("requests", "responses", "user_agents"):
            s[k] = dict(s[k])
        print("target: summary " + json.dumps(s, sort_keys=True), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bind", required=True, help="ADDRESS:PORT to listen on (UDP)")
    ap.add_argument("--users", default="100-109", help="known extensions, e.g. 100-109,200")
    ap.add_argument("--password", action="append", metavar="EXT=PASSWORD",
                    help="password of one extension (repeatable; adds it to the known users)")
    ap.add_argument("--default-password", default="not-guessable-",
                    help="password of other known users: this prefix + the extension")
    ap.add_argument("--realm", default="secsip-test")
    ap.add_argument("--no-qop", action="store_true", help="challenge without qop (RFC 2069 style)")
    ap.add_argument("--server", default="secsip-target/1.0 (test PBX)", help="Server header value")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="exit after this long")
    ap.add_argument("--max-requests", type=int, default=100000, help="exit after this many datagrams")
    Target(ap.parse_args()).run()


if __name__ == "__main__":
    main()

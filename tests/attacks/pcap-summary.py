#!/usr/bin/env python3
"""Summarise the SIP over UDP in a pcap, split into named phases by time.

Usage: pcap-summary.py FILE.pcap [NAME=START_EPOCH_SECONDS ...] [--json]

Each phase runs from its START to the next phase's START (the last one to the end of the
capture); packets before the first START belong to phase "before". Without phases the
whole file is one phase "all". For each phase it prints the number of requests per method,
responses per status and CSeq method, and the distinct values of the headers that identify
a scanner (User-Agent, From, To, Contact, Request-URI shapes, the users tried).

Standard library only: classic pcap (microsecond or nanosecond, either byte order),
Ethernet with optional 802.1Q tags, IPv4 (unfragmented) and IPv6 without extension
headers, UDP.
"""

import collections
import json
import re
import struct
import sys

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        sys.exit("pcap-summary: %s is not a classic pcap file" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit("pcap-summary: link type %d, only Ethernet (1) is supported" % linktype)
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ts = sec + frac / (1e9 if nano else 1e6)
        udp = udp_payload(frame)
        if udp is not None:
            yield (ts,) + udp


def udp_payload(frame):
    p = 12
    ethertype = struct.unpack("!H", frame[p:p + 2])[0]
    p += 2
    while ethertype in (0x8100, 0x88A8):
        ethertype = struct.unpack("!H", frame[p + 2:p + 4])[0]
        p += 4
    if ethertype == 0x0800:
        ihl = (frame[p] & 0x0F) * 4
        if frame[p + 9] != 17:
            return None
        src = ".".join(str(b) for b in frame[p + 12:p + 16])
        dst = ".".join(str(b) for b in frame[p + 16:p + 20])
        p += ihl
    elif ethertype == 0x86DD:
        if frame[p + 6] != 17:
            return None
        src = frame[p + 8:p + 24].hex()
        dst = frame[p + 24:p + 40].hex()
        p += 40
    else:
        return None
    sport, dport = struct.unpack("!HH", frame[p:p + 4])
    return src, sport, dst, dport, frame[p + 8:]


def parse(payload):
    text = payload.decode("utf-8", "replace")
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    lines = re.split(r"\r?\n", head)
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            raw = name.strip()
            headers.append((COMPACT.get(raw.lower(), raw.lower()), raw, value.strip()))
    return lines[0], headers


def uri_user(value):
    m = re.search(r"<([^>]*)>", value or "")
    uri = m.group(1) if m else (value or "").split(";", 1)[0].strip()
    m = re.match(r"sips?:([^@;>]*)@", uri, re.I)
    return m.group(1) if m else ""


def shape(value):
    """Replace runs of digits and hex tags by placeholders, to group similar values."""
    value = re.sub(r"tag=[0-9a-fA-F]+", "tag=<hex>", value)
    value = re.sub(r"branch=z9hG4bK-?[0-9]+", lambda m: m.group(0).split("K")[0] + "K" + ("-" if "-" in m.group(0) else "") + "<n>", value)
    return value


def compress(users):
    """['100','101','102','7'] -> '7, 100-102' (numeric runs), others listed."""
    nums = sorted({int(u) for u in users if u.isdigit()})
    out, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else "%d-%d" % (nums[i], nums[j]))
        i = j + 1
    out += sorted({u for u in users if not u.isdigit()})
    return ", ".join(out)


def summarise(path, phases):
    phases = sorted(phases, key=lambda p: p[1])
    result = collections.OrderedDict()

    def phase_of(ts):
        name = "before" if phases else "all"
        for n, start in phases:
            if ts >= start:
                name = n
        return name

    for ts, src, sport, dst, dport, payload in packets(path):
        name = phase_of(ts)
        ph = result.setdefault(name, {
            "packets": 0, "requests": collections.Counter(), "responses": collections.Counter(),
            "header_names": collections.Counter(), "user_agents": collections.Counter(),
            "from": collections.Counter(), "to": collections.Counter(),
            "contact": collections.Counter(), "request_uri": collections.Counter(),
            "users_tried": set(), "authorization": 0, "sources": collections.Counter(),
            "first": ts, "last": ts,
        })
        ph["packets"] += 1
        ph["last"] = ts
        first, headers = parse(payload)
        h = {}
        for n, _, v in headers:
            h.setdefault(n, v)
        cseq_method = (h.get("cseq") or "? ?").split()[-1]
        if first.startswith("SIP/2.0 "):
            ph["responses"][" ".join(first.split(" ")[1:]) + " (" + cseq_method + ")"] += 1
            continue
        method, ruri = (first.split(" ") + ["", ""])[:2]
        ph["requests"][method] += 1
        ph["sources"]["%s:%d" % (src, sport)] += 1
        ph["header_names"][" ".join(raw for _, raw, _ in headers)] += 1
        ph["user_agents"][h.get("user-agent", "(none)")] += 1
        ph["from"][shape(re.sub(r'"\d+"<sip:\d+@', '"<ext>"<sip:<ext>@', h.get("from", "")))] += 1
        ph["to"][shape(re.sub(r'"\d+"<sip:\d+@', '"<ext>"<sip:<ext>@', h.get("to", "")))] += 1
        ph["contact"][re.sub(r"sip:\d+@", "sip:<ext>@", h.get("contact", "(none)"))] += 1
        ph["request_uri"][method + " " + re.sub(r"sip:\d+@", "sip:<ext>@", ruri)] += 1
        if "authorization" in h or "proxy-authorization" in h:
            ph["authorization"] += 1
        user = uri_user(h.get("to")) if method == "REGISTER" else uri_user(ruri)
        if user:
            ph["users_tried"].add(user)
    for ph in result.values():
        ph["users_tried"] = compress(ph["users_tried"])
        ph["seconds"] = round(ph.pop("last") - ph.pop("first"), 3)
        for k, v in list(ph.items()):
            if isinstance(v, collections.Counter):
                ph[k] = dict(v.most_common())
    return result


def main(argv):
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    if not argv:
        sys.exit(__doc__)
    phases = []
    for a in argv[1:]:
        name, eq, start = a.partition("=")
        if not eq:
            sys.exit("pcap-summary: phase must be NAME=EPOCH_SECONDS, got %r" % a)
        phases.append((name, float(start)))
    res = summarise(argv[0], phases)
    if as_json:
        print(json.dumps(res, indent=1))
        return
    for name, ph in res.items():
        req = sum(ph["requests"].values())
        print("[%s] %d packets in %.1f s: %d requests %s; %d responses %s"
              % (name, ph["packets"], ph["seconds"], req,
                 ", ".join("%s %d" % kv for kv in ph["requests"].items()),
                 sum(ph["responses"].values()),
                 ", ".join("%s %d" % kv for kv in ph["responses"].items())))
        for key in ("user_agents", "from", "to", "contact", "request_uri"):
            for value, n in ph[key].items():
                print("    %-12s %4d x %s" % (key.replace("_", "-"), n, value))
        if ph["users_tried"]:
            print("    users tried: %s" % ph["users_tried"])
        if ph["authorization"]:
            print("    requests with Authorization: %d" % ph["authorization"])


if __name__ == "__main__":
    main(sys.argv[1:])

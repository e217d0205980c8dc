#!/usr/bin/env python3
"""Writes the seed corpus from the shipped captures: every frame of tests/pcaps/*.pcap (frame),
each UDP/TCP payload on port 5060 (sip), each capture as one length-prefixed sequence
(engine, the input format of fuzz_targets/engine.rs), each SIP payload as a TCP stream cut
into segments (stream, the records of secsip::fuzz::stream), each URI of a start line or
From/To/Contact (normal), and WebSocket streams (websocket: a control byte, then handshakes
and frames, masked and not, fragmented, with pings and a close). `seed.py TARGET...` seeds
only those targets. Run once per target; libFuzzer grows from here."""
import hashlib, os, re, struct, sys

only = set(sys.argv[1:])

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(end + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        if link == 1:
            yield pkt
        elif link == 113 and len(pkt) >= 16:  # Linux cooked capture: rebuild an Ethernet header
            yield b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01" + pkt[14:16] + pkt[16:]

def payload(f):
    """UDP/TCP payload of an untagged IPv4/IPv6 frame to or from port 5060, if any."""
    et = f[12:14]
    if et == b"\x08\x00" and len(f) > 34:
        ihl = (f[14] & 15) * 4
        proto, l4 = f[23], 14 + ihl
    elif et == b"\x86\xdd" and len(f) > 54:
        proto, l4 = f[20], 54
    else:
        return None
    ports = struct.unpack(">HH", f[l4:l4 + 4]) if len(f) >= l4 + 4 else (0, 0)
    if 5060 not in ports:
        return None
    if proto == 17:
        return f[l4 + 8:]
    if proto == 6 and len(f) > l4 + 12:
        return f[l4 + (f[l4 + 12] >> 4) * 4:] or None
    return None

def put(target, data):
    if only and target not in only:
        return
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(root, "fuzz", "corpus", target, name), "wb") as f:
        f.write(data)

def stream_records(msg, salt):
    """A SYN, then `msg` twice (pipelined) in segments of varying size, with a keepalive
    between, every segment acknowledging: the record format of secsip::fuzz::stream."""
    out, off, cut = bytearray(b"\x01\x00\x00\x00\x00"), 1, 40 + salt % 150
    data = msg + b"\r\n\r\n" + msg
    for at in range(0, len(data), cut):
        piece = data[at:at + cut]
        out += bytes([0x08]) + struct.pack(">H", (off + at) & 0xffff) + b"\x00" + bytes([len(piece)]) + piece
    return bytes(out)

pcaps = sorted(p for p in os.listdir(os.path.join(root, "tests", "pcaps")) if p.endswith(".pcap"))
for p in pcaps:
    seq = b""
    for i, f in enumerate(frames(os.path.join(root, "tests", "pcaps", p))):
        if i < 64:
            put("frame", f)
        if len(seq) < 60000:
            seq += struct.pack(">H", len(f)) + f
        pl = payload(f)
        if pl and i < 64:
            put("sip", pl)
            put("stream", stream_records(pl, i))
            for uri in re.findall(rb"(?:sips?|tel):[^\s>;,]+(?:;user=phone)?", pl[:2000]):
                put("normal", uri)
    put("engine", seq)

for extra in (b"sip:%2B88216012345@gw.example;user=phone", b"tel:16-012-345;phone-context=+882",
              b"sip:caf%C3%A9@GW.Example.", b"sip:100%00x@gw", b"sips:a%0d%0a@192.0.2.010:5061"):
    put("normal", extra)

def ws_frame(fin, op, mask, payload):
    f = bytes([(0x80 if fin else 0) | op])
    m = 0x80 if mask else 0
    n = len(payload)
    f += bytes([m | n]) if n < 126 else bytes([m | 126]) + struct.pack(">H", n) if n < 65536 else bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        f += mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    else:
        f += payload
    return f

SIP_WS = (b"OPTIONS sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n"
          b"From: <sip:bob@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: ws1@x\r\nCSeq: 1 OPTIONS\r\n"
          b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
REQ = (b"GET / HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
K = b"\x37\xfa\x21\x3d"
ws_seeds = [
    (0x03, REQ),                                                           # client handshake, cut in 4s
    (0x80 | 0x00, ws_frame(True, 1, K, SIP_WS)),                           # client, open, one frame
    (0x80 | 0x07, ws_frame(False, 1, K, SIP_WS[:30]) + ws_frame(True, 9, K, b"hi") + ws_frame(True, 0, K, SIP_WS[30:])),
    (0xc0 | 0x02, ws_frame(True, 2, None, SIP_WS) + ws_frame(True, 8, None, b"\x03\xe8")),  # server
    (0x80 | 0x0f, ws_frame(True, 1, None, SIP_WS)),                        # unmasked client: refused
    (0x80 | 0x01, ws_frame(True, 1, K, SIP_WS * 8)),                       # over the bound
    (0x80 | 0x05, ws_frame(True, 1, K, SIP_WS) * 3),                       # pipelined
]
for ctl, stream in ws_seeds:
    put("websocket", bytes([ctl]) + stream)
targets = ("frame", "sip", "engine", "stream", "websocket", "normal")
print("seeded", {t: len(os.listdir(os.path.join(root, "fuzz", "corpus", t))) for t in targets}, file=sys.stderr)

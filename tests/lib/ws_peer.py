#!/usr/bin/env python3
"""Real-socket peers for tests/websocket.rs.

server ADDR PORT...      accept on every PORT; on a WebSocket port (8080) answer an upgrade
                         with 101 (subprotocol sip), then read until the peer goes; on the
                         others just read.
client SPORT DPORT FILE  connect from 10.99.0.1:SPORT, send each hex line of FILE as its own
                         segment (TCP_NODELAY, 50 ms apart; a line "WAIT101" reads the 101),
                         then print "reset", "closed" or "open" after 700 ms.
connect DPORT N TIMEOUT  open N connections at once; print how many connected within TIMEOUT s.
"""
import socket, sys, threading, time

def serve(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(512)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, port), daemon=True).start()

def handle(c, port):
    try:
        buf = b""
        if port == 8080:
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            if b"sec-websocket-protocol: sip" in buf.lower():
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
        while c.recv(65536):
            pass
    except OSError:
        pass
    finally:
        c.close()

def client(sport, dport, path):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.bind(("10.99.0.1", sport)); c.settimeout(3)
    c.connect(("10.99.0.2", dport))
    try:
        for line in open(path).read().split():
            if line == "WAIT101":
                got = b""
                while b"\r\n\r\n" not in got:
                    d = c.recv(4096)
                    if not d:
                        print("closed"); return
                    got += d
                continue
            c.send(bytes.fromhex(line))
            time.sleep(0.05)
        c.settimeout(0.7)
        try:
            d = c.recv(4096)
            print("closed" if d == b"" else "open")
        except socket.timeout:
            print("open")
    except ConnectionResetError:
        print("reset")
    except BrokenPipeError:
        print("reset")

def connect(dport, n, timeout):
    socks, ok = [], 0
    for _ in range(n):
        s = socket.socket(); s.setblocking(False)
        s.connect_ex(("10.99.0.2", dport)); socks.append(s)
    deadline = time.time() + timeout
    import select
    pending = list(socks)
    while pending and time.time() < deadline:
        _, w, _ = select.select([], pending, [], max(0, deadline - time.time()))
        for s in w:
            pending.remove(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                ok += 1
    print(ok)

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "server":
        for p in sys.argv[3:]:
            threading.Thread(target=serve, args=(sys.argv[2], int(p)), daemon=True).start()
        time.sleep(3600)
    elif cmd == "client":
        client(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        connect(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))

#!/usr/bin/env python3
"""One hostile client's floods for test/net/client-fairness.test.ts, and a DNS upstream that never answers some names.

  flood.py hold HOST PORT N SECONDS      open N TCP connections, keep them idle; print "OPEN <held> <refused> <failed> <connected>"
  flood.py dns SERVER N                  send N A queries for fresh slow-*.example names, print "SENT <n>"
  flood.py connect HOST PORT N SECONDS   N connects as fast as possible, keep the ones that open; the same line
  flood.py dnsstub PORT                  on 127.0.0.1:PORT answer A 10.192.0.99, never answer slow-* names

Every mode stops by itself (SECONDS, or 300 s for dnsstub): nothing outlives a test run.
"""
import os
import socket
import struct
import sys
import time


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def open_many(host, port, n, timeout):
    held, refused = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            held.append(s)
        except ConnectionRefusedError:
            refused += 1
            s.close()
        except OSError:
            s.close()
    return held, refused


def hold(host, port, n, seconds, timeout):
    held, refused = open_many(host, port, n, timeout)
    # A connection the far side closed at once (tinyproxy over MaxClients) is not held: count what is still open.
    time.sleep(0.5)
    alive = 0
    for s in held:
        s.setblocking(False)
        try:
            s.recv(1)
            continue  # closed, or answered (an error) rather than held
        except BlockingIOError:
            pass
        except OSError:
            continue
        alive += 1
    say(f"OPEN {alive} {refused} {n - len(held) - refused} {len(held)}")
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.2)
    for s in held:
        s.close()


def query(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)


def dns(server, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tag = os.urandom(4).hex()
    for i in range(n):
        s.sendto(query(f"slow-{tag}-{i}.example", i & 0xFFFF), (server, 53))
    say(f"SENT {n}")


def dnsstub(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.5)
    say("READY")
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            data, peer = s.recvfrom(4096)
        except socket.timeout:
            continue
        if len(data) < 12:
            continue
        qid = data[:2]
        pos, labels = 12, []
        while pos < len(data) and data[pos] != 0:
            ln = data[pos]
            labels.append(data[pos + 1:pos + 1 + ln].decode("latin-1"))
            pos += 1 + ln
        question = data[12:pos + 5]
        if labels and labels[0].startswith("slow-"):
            continue
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("10.192.0.99")
        s.sendto(qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer, peer)


def main(argv):
    mode = argv[1]
    if mode == "hold":
        hold(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), 2.0)
    elif mode == "connect":  # the same, the far side being Tor's TransPort (which accepts every connection)
        hold(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), 2.0)
    elif mode == "dns":
        dns(argv[2], int(argv[3]))
    elif mode == "dnsstub":
        dnsstub(int(argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)

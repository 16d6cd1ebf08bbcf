#!/usr/bin/env python3
"""Stand-in for what lies between the gateway's qrexec-client-vm and a service qube's port, for the lab only:
the qrexec agent's socket in the gateway, dom0's policy evaluation, and the target qube's qubes.ConnectTCP.

Runs as root in the service qube's network namespace (which has loopback and nothing else: the service qube has no
netvm) and listens on the unix socket the gateway's qrexec-client-vm stand-in connects to (a path in the gateway
machine's /run; unix sockets on a file system ignore network namespaces). For each call it records the caller's
arguments, uid and gid, then decides as dom0 would: the policy files given (our rendered 70-i2p-gateway-publish.policy,
then 90-default's `qubes.ConnectTCP * @anyvm @anyvm deny`), first matching line wins, default deny; the caller is
--source (dom0 knows the calling qube; nothing the caller sends can change that). Allowed calls to --qube for
qubes.ConnectTCP+PORT connect to this namespace's 127.0.0.1:PORT, as Qubes 4.3's /etc/qubes-rpc/qubes.ConnectTCP
(a link to /dev/tcp/127.0.0.1) does, and relay both ways. Standard library only; one JSON line per event in --log.
"""
import argparse
import json
import os
import re
import socket
import struct
import sys
import threading
import time

# The lab's JSON-lines event log, shared with the other stand-ins (netlab.py sits beside this file).
from netlab import Log

DEFAULT_DENY = "qubes.ConnectTCP * @anyvm @anyvm deny\n"
PORT_RE = re.compile(r"^[1-9][0-9]{0,4}$")  # qrexec: "a decimal integer with no leading zeros"


def parse_policy(text):
    rules = []
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "#" in raw:
            raise ValueError("line %d: inline comment" % n)
        f = line.split()
        if len(f) < 5 or f[4] not in ("allow", "deny"):
            raise ValueError("line %d: not SERVICE ARG SOURCE DEST allow|deny: %r" % (n, raw))
        for q in (f[2], f[3]):
            if q.startswith("@") and q != "@anyvm":
                raise ValueError("line %d: this stand-in knows literal names and @anyvm only" % n)
        rules.append(f)
    return rules


def decide(rules, source, target, service, arg):
    for f in rules:
        if f[0] not in ("*", service) or f[1] not in ("*", "+" + arg):
            continue
        if not (f[2] == source or (f[2] == "@anyvm" and source != "dom0")):
            continue
        if not (f[3] == target or (f[3] == "@anyvm" and target not in ("dom0", "") and not target.startswith("@"))):
            continue
        return f[4]
    return "deny"


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(conn, a, rules, log):
    try:
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        head = b""
        while not head.endswith(b"\n") and len(head) < 4096:
            chunk = conn.recv(1)
            if not chunk:
                return
            head += chunk
        req = json.loads(head)
        target, full = req["target"], req["service"]
        service, _, arg = full.partition("+")
        verdict = decide(rules, a.source, target, service, arg)
        rec = {"ev": "call", "argv": req["argv"], "uid": uid, "gid": gid, "source": a.source, "target": target,
               "service": service, "arg": arg, "policy": verdict}
        if verdict != "allow" or target != a.qube or service != "qubes.ConnectTCP" or not PORT_RE.match(arg):
            log.write(**rec, result="refused")
            conn.sendall(b"deny\n")
            return
        backend = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            backend.connect(("127.0.0.1", int(arg)))
        except OSError as e:
            log.write(**rec, result="connect-failed", error=e.strerror or str(e))
            conn.sendall(b"fail\n")
            return
        log.write(**rec, result="connected", local=backend.getsockname()[0])
        conn.sendall(b"allow\n")
        t = threading.Thread(target=pipe, args=(backend, conn), daemon=True)
        t.start()
        pipe(conn, backend)
        t.join()
        backend.close()
    except Exception as e:  # one call failing must not end the stand-in
        log.write(ev="error", error=repr(e))
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True, help="the gateway's /run/qubes/qrexec-agent, as a host path")
    ap.add_argument("--source", required=True, help="the calling qube's name, as dom0 knows it")
    ap.add_argument("--qube", required=True, help="the name of the qube this namespace stands for")
    ap.add_argument("--policy", action="append", default=[], help="policy files, in the order dom0 reads them")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    texts = [open(p).read() for p in a.policy] + [DEFAULT_DENY]
    rules = [r for t in texts for r in parse_policy(t)]
    log = Log(a.log)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(a.socket)
    # The real agent's socket is world-connectable (made with umask 0); its directory /run/qubes is root:qubes 2770,
    # which the lab does not model (no group qubes here): see the connection unit's SupplementaryGroups=qubes.
    os.chmod(a.socket, 0o777)
    s.listen(64)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, a, rules, log), daemon=True).start()


if __name__ == "__main__":
    main()

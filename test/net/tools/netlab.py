#!/usr/bin/env python3
"""Stand-ins, recorders and probes for the datapath suite (test/net). Standard library only.

Subcommands (each long-running one prints READY on stdout once every socket is bound):
  up          the "clearnet": records every frame arriving on the interfaces that face a gateway (AF_PACKET, one
              socket each; --iface, and every interface whose name matches --watch, also one that appears later),
              each with the interface it came in on, and runs a DNS server and TCP/UDP servers that client traffic
              must never reach; every hit is one JSON line in --log.
  tor         a stand-in for Tor's network: TransPort records each connection's ORIGINAL destination
              (SO_ORIGINAL_DST) and answers (a connection that opens with HOLD stays open, one answer per line); DNSPort (UDP only, like tor) records the query and answers.
  http-proxy  a stand-in for an I2P router's HTTP proxy (or any local listener): records the request head.
  sync        sends one marker frame out of an interface with AF_PACKET (below netfilter), so the recorder on
              the far side can prove it has seen every frame sent before it.
  hold        one client TCP connection that stays open, driven by files (see cmd_hold); with the Tor stand-in,
              which answers every line of a connection that opens with HOLD.
  probe       runs a JSON list of probes (tcp, udp, icmp, dns, tcpraw: one segment with chosen flags, frag: a DNS
              query in two IPv4 fragments, l2syn: a SYN to any address, e.g. 127.0.0.1, in a frame to a given MAC,
              l2dns: a DNS query over UDP the same way)
              concurrently, each bounded, prints JSON results.
"""
import argparse
import errno
import ipaddress
import json
import os
import re
import select
import socket
import struct
import sys
import threading
import time

SYNC_ETHERTYPE = 0x88B5  # IEEE "local experimental": never used by anything else on these links
LEAK_A = "172.31.1.66"  # what the clearnet DNS answers: seeing it at the client means a leak
LEAK_AAAA = "fd00:200::66"
TOR_A = "10.192.0.99"  # what the Tor stand-in answers (inside VirtualAddrNetworkIPv4 10.192.0.0/10)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, **rec):
        rec["t"] = round(time.time(), 4)
        with self.lock:
            self.f.write(json.dumps(rec, sort_keys=True) + "\n")
            self.f.flush()


def ready():
    sys.stdout.write("READY\n")
    sys.stdout.flush()


def spawn(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------------------------- DNS wire format

QTYPES = {1: "A", 28: "AAAA", 12: "PTR", 16: "TXT", 15: "MX", 5: "CNAME", 33: "SRV", 65: "HTTPS", 255: "ANY"}
QTYPE_NUM = {v: k for k, v in QTYPES.items()}


def read_name(msg, off, depth=0):
    labels = []
    while True:
        if off >= len(msg) or depth > 20:
            raise ValueError("bad name")
        n = msg[off]
        if n == 0:
            return ".".join(labels), off + 1
        if n & 0xC0 == 0xC0:
            ptr = struct.unpack("!H", msg[off:off + 2])[0] & 0x3FFF
            name, _ = read_name(msg, ptr, depth + 1)
            labels.append(name)
            return ".".join(l for l in labels if l), off + 2
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def parse_query(msg):
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    name, off = read_name(msg, 12)
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    return qid, flags, name, qtype, msg[12:off + 4]


def build_answer(msg, rdatas):
    """rdatas: list of (type, bytes). NOERROR with those answers (none: NODATA)."""
    qid, flags, name, qtype, question = parse_query(msg)
    rd = flags & 0x0100
    hdr = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080, 1, len(rdatas), 0, 0)
    body = question
    for rtype, rdata in rdatas:
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    return hdr + body


def build_query(name, qtype, qid, ecs=None):
    """A query; ecs: an IPv4 address for an EDNS client-subnet option (/32), as a client may add one itself."""
    if ecs is None:
        return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, 1)
    opt = struct.pack("!HHHBB", 8, 8, 1, 32, 0) + socket.inet_aton(ecs)
    return (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + encode_name(name) + struct.pack("!HH", qtype, 1)
            + b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(opt)) + opt)


def parse_response(msg):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    answers = []
    for _ in range(an):
        _, off = read_name(msg, off)
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 1 and rdlen == 4:
            answers.append({"type": "A", "data": socket.inet_ntop(socket.AF_INET, rdata)})
        elif rtype == 28 and rdlen == 16:
            answers.append({"type": "AAAA", "data": socket.inet_ntop(socket.AF_INET6, rdata)})
        else:
            answers.append({"type": QTYPES.get(rtype, str(rtype)), "data": rdata.hex()})
    rcodes = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
    return {"id": qid, "rcode": rcodes.get(flags & 0xF, str(flags & 0xF)), "answers": answers}


# ------------------------------------------------------------------------------------------------------- up

def frame_record(frame, pkttype, iface):
    if len(frame) < 14:
        return None
    ethertype = struct.unpack("!H", frame[12:14])[0]
    p = frame[14:]
    rec = {"ev": "frame", "iface": iface, "pkttype": pkttype, "ethertype": ethertype}
    if ethertype == SYNC_ETHERTYPE:
        return {"ev": "sync", "iface": iface, "token": p.split(b"\x00")[0].decode("ascii", "replace")}
    if ethertype == 0x0806:
        rec["l3"] = "arp"
        return rec
    if ethertype == 0x0800 and len(p) >= 20:
        ihl = (p[0] & 0x0F) * 4
        rec.update(l3="ip4", src=socket.inet_ntop(socket.AF_INET, p[12:16]), dst=socket.inet_ntop(socket.AF_INET, p[16:20]),
                   proto=p[9], ttl=p[8], dscp=p[1] >> 2, frag=struct.unpack("!H", p[6:8])[0] & 0x3FFF)
        l4 = p[ihl:]
        proto = p[9]
    elif ethertype == 0x86DD and len(p) >= 40:
        rec.update(l3="ip6", src=socket.inet_ntop(socket.AF_INET6, p[8:24]), dst=socket.inet_ntop(socket.AF_INET6, p[24:40]),
                   proto=p[6], ttl=p[7], dscp=((p[0] & 0x0F) << 2) | (p[1] >> 6))
        l4 = p[40:]
        proto = p[6]
        # walk extension headers (MLD reports come behind hop-by-hop options)
        while proto in (0, 43, 60, 44) and len(l4) >= 8:
            nxt, hlen = l4[0], (8 if proto == 44 else (l4[1] + 1) * 8)
            proto, l4 = nxt, l4[hlen:]
        rec["proto"] = proto
    else:
        rec["l3"] = "other"
        return rec
    if proto in (6, 17) and len(l4) >= 4:
        rec["sport"], rec["dport"] = struct.unpack("!HH", l4[:4])
        if proto == 6 and len(l4) >= 14:
            rec["tcpflags"] = l4[13]
    elif proto in (1, 58) and len(l4) >= 1:
        rec["icmptype"] = l4[0]
    return rec


def up_capture(s, log):
    while True:
        try:
            frame, addr = s.recvfrom(65535)
        except OSError as e:
            # A socket bound while its interface was down reports ENETDOWN once (the kernel hooks it in when the
            # interface comes up): not a reason to stop recording.
            if e.errno == errno.ENETDOWN:
                continue
            raise
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        rec = frame_record(frame, addr[2], addr[0])
        if rec is not None:
            log.write(**rec)


def up_bind(iface, log):
    """A capture socket on one interface (it may be down: frames queue on the socket once it is bound)."""
    cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    cap.bind((iface, 0))
    spawn(up_capture, cap, log)
    log.write(ev="watch", iface=iface)


def up_watch(pattern, bound, log):
    """Binds a capture socket to every new interface whose name matches `pattern` (a gateway attached later: the
    lab waits for its `watch` line before it brings the link up, so no frame of it goes unrecorded)."""
    rx = re.compile(pattern)
    while True:
        for _, name in socket.if_nameindex():
            if name not in bound and rx.fullmatch(name):
                try:
                    up_bind(name, log)
                    bound.add(name)
                except OSError:
                    pass  # gone again, or not ready: the next round tries again
        time.sleep(0.05)


def up_dns_udp(sock, log):
    while True:
        msg, peer = sock.recvfrom(4096)
        try:
            qid, flags, name, qtype, _ = parse_query(msg)
        except Exception:
            continue
        log.write(ev="up-dns", via="udp", name=name, qtype=QTYPES.get(qtype, str(qtype)), peer=peer[0])
        sock.sendto(build_answer(msg, leak_rdata(qtype)), peer)


def leak_rdata(qtype):
    if qtype == 1:
        return [(1, socket.inet_pton(socket.AF_INET, LEAK_A))]
    if qtype == 28:
        return [(28, socket.inet_pton(socket.AF_INET6, LEAK_AAAA))]
    return []


def up_dns_tcp(sock, log):
    while True:
        conn, peer = sock.accept()
        spawn(up_dns_tcp_conn, conn, peer, log)


def up_dns_tcp_conn(conn, peer, log):
    try:
        conn.settimeout(2)
        ln = struct.unpack("!H", recv_exact(conn, 2))[0]
        msg = recv_exact(conn, ln)
        qid, flags, name, qtype, _ = parse_query(msg)
        log.write(ev="up-dns", via="tcp", name=name, qtype=QTYPES.get(qtype, str(qtype)), peer=peer[0])
        ans = build_answer(msg, leak_rdata(qtype))
        conn.sendall(struct.pack("!H", len(ans)) + ans)
    except Exception:
        pass
    finally:
        conn.close()


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def up_tcp(sock, port, log):
    while True:
        conn, peer = sock.accept()
        spawn(up_tcp_conn, conn, peer, port, log)


def up_tcp_conn(conn, peer, port, log):
    try:
        conn.settimeout(1)
        try:
            head = conn.recv(4096)
        except socket.timeout:
            head = b""
        log.write(ev="up-tcp", port=port, peer=peer[0], head=head[:200].decode("latin-1"))
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nUP-LEAKED\n")
    except Exception:
        pass
    finally:
        conn.close()


def up_udp(sock, port, log):
    while True:
        msg, peer = sock.recvfrom(4096)
        log.write(ev="up-udp", port=port, peer=peer[0], size=len(msg))
        sock.sendto(b"UP-LEAKED", peer)


def dual_socket(kind, port, addr="::"):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    return s


def cmd_up(a):
    log = Log(a.log)
    threads = []
    bound = set()
    for iface in a.iface:
        up_bind(iface, log)
        bound.add(iface)
    if a.watch:
        threads.append(spawn(up_watch, a.watch, bound, log))
    # UDP sockets are bound per address: a reply must come from the address the query was sent to, or the
    # gateway's masquerade cannot match it (and a leak would look like silence).
    for addr in a.addr:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        u.bind((addr, 53))
        t.bind((addr, 53))
        t.listen(16)
        threads += [spawn(up_dns_udp, u, log), spawn(up_dns_tcp, t, log)]
    for port in a.tcp:
        threads.append(spawn(up_tcp, dual_socket(socket.SOCK_STREAM, port), port, log))
    for port in a.udp:
        for addr in a.addr:
            u = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((addr, port))
            threads.append(spawn(up_udp, u, port, log))
    ready()  # the capture sockets were bound first: frames queue on them even before the threads read them
    while True:
        time.sleep(3600)


# ------------------------------------------------------------------------------------------------------ tor

SO_ORIGINAL_DST = 80


def original_dst(conn):
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port = struct.unpack("!H", raw[2:4])[0]
    return f"{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{port}"


def tor_trans(sock, log):
    while True:
        conn, peer = sock.accept()
        spawn(tor_trans_conn, conn, peer, log)


def tor_trans_conn(conn, peer, log):
    try:
        try:
            orig = original_dst(conn)
        except OSError as e:
            orig = f"none ({e.errno})"
        local = "%s:%d" % conn.getsockname()[:2]
        log.write(ev="tor-trans", orig=orig, peer=peer[0], local=local)
        conn.settimeout(0.5)
        first = b""
        try:
            first = conn.recv(4096)
        except socket.timeout:
            pass
        if first.startswith(HOLD_LINE):
            return tor_hold(conn, orig, log, first[len(HOLD_LINE):])
        body = f"TOR-RECORDER {orig}\n".encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n" + body)
    except Exception:
        pass
    finally:
        conn.close()


HOLD_LINE = b"HOLD\n"


def tor_hold(conn, orig, log, rest):
    """A client that opened with HOLD keeps its connection: every line it sends is answered with one line."""
    log.write(ev="tor-hold", orig=orig)
    conn.sendall(f"TOR-RECORDER {orig} HOLD\n".encode())
    conn.settimeout(120)
    buf = rest
    while True:
        while b"\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        log.write(ev="tor-hold-line", orig=orig, line=line.decode("latin-1"))
        conn.sendall(b"ECHO " + line + b"\n")


def tor_dns(sock, log):
    while True:
        msg, peer = sock.recvfrom(4096)
        try:
            qid, flags, name, qtype, _ = parse_query(msg)
        except Exception:
            continue
        log.write(ev="tor-dns", name=name, qtype=QTYPES.get(qtype, str(qtype)), peer=peer[0])
        rd = [(1, socket.inet_pton(socket.AF_INET, TOR_A))] if qtype == 1 else []
        sock.sendto(build_answer(msg, rd), peer)


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host.strip("[]"), int(port)


def tor_control(sock, cookie, reply, log):
    """Tor's control port protocol, the little `qubes-i2p-gateway status` speaks: AUTHENTICATE with the cookie's
    hex (anything else is refused, as Tor refuses it), GETINFO answered with the canned reply, QUIT."""
    while True:
        conn, _ = sock.accept()
        spawn(tor_control_conn, conn, cookie, reply, log)


def tor_control_conn(conn, cookie, reply, log):
    try:
        f = conn.makefile("rwb")
        authed = False
        for raw in f:
            line = raw.decode("latin-1").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            log.write(ev="tor-control", command=verb, authenticated=authed)
            if verb == "AUTHENTICATE":
                authed = line[len("AUTHENTICATE "):].strip().lower() == cookie.hex()
                f.write(b"250 OK\r\n" if authed else b"515 Authentication failed: Safe cookie response did not match expected value.\r\n")
            elif verb == "QUIT":
                f.write(b"250 closing connection\r\n")
                f.flush()
                return
            elif not authed:
                f.write(b"514 Authentication required.\r\n")
                f.flush()
                return
            elif verb == "GETINFO":
                f.write(reply.replace("\n", "\r\n").encode())
            else:
                f.write(b"510 Unrecognized command\r\n")
            f.flush()
    except OSError:
        pass
    finally:
        conn.close()


def cmd_tor(a):
    log = Log(a.log)
    h, p = hostport(a.trans)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((h, p))
    t.listen(64)
    h, p = hostport(a.dns)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((h, p))
    spawn(tor_trans, t, log)
    spawn(tor_dns, u, log)
    if a.control:
        # Where the packaged torrc puts Tor's ControlSocket and CookieAuthFile: a fresh cookie, both for this user only.
        os.umask(0o077)
        cookie = os.urandom(32)
        with open(a.cookie, "wb") as f:
            f.write(cookie)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.bind(a.control)
        c.listen(8)
        with open(a.bootstrap, "r") as f:
            reply = f.read()
        spawn(tor_control, c, cookie, reply, log)
    ready()
    while True:
        time.sleep(3600)


# -------------------------------------------------------------------------------------------------- http-proxy

def proxy_conn(conn, peer, log, banner, port, pages):
    try:
        conn.settimeout(1.5)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        text = head.split(b"\r\n\r\n")[0].decode("latin-1")
        lines = text.split("\r\n")
        headers = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append([k.strip(), v.strip()])
        log.write(ev="proxy", port=port, peer=peer[0], request=lines[0] if lines else "", headers=headers)
        target = lines[0].split(" ")[1] if lines and lines[0].count(" ") >= 2 else ""
        page = pages.get((port, target))
        if page is not None:
            # A console page (i2pd's, from a fixture): served as the console serves it.
            with open(page, "rb") as f:
                body = f.read()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % len(body) + body)
            return
        body = f"{banner}\n".encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % len(body) + body)
    except Exception as e:
        log.write(ev="proxy-error", port=port, error=repr(e))
    finally:
        conn.close()


def cmd_http_proxy(a):
    log = Log(a.log)
    # --page PORT:TARGET=FILE: that request target on that port gets FILE (a console page), every other the banner.
    pages = {}
    for spec in a.page:
        where, _, path = spec.rpartition("=")
        port, _, target = where.partition(":")
        pages[(int(port), target)] = path
    socks = []
    for listen in a.listen:
        h, p = hostport(listen)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((h, p))
        s.listen(64)
        socks.append((s, p))

    def serve(s, p):
        while True:
            conn, peer = s.accept()
            spawn(proxy_conn, conn, peer, log, a.banner, p, pages)

    for s, p in socks:
        spawn(serve, s, p)
    ready()
    while True:
        time.sleep(3600)


# ------------------------------------------------------------------------------------------------------ sync

def cmd_sync(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    payload = a.token.encode("ascii") + b"\x00" * max(0, 46 - len(a.token))
    s.send(b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", SYNC_ETHERTYPE) + payload)


# ----------------------------------------------------------------------------------------------------- probes

def is6(host):
    return ipaddress.ip_address(host).version == 6


def probe_tcp(p):
    fam = socket.AF_INET6 if is6(p["host"]) else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(p.get("timeout", 1.5))
    try:
        s.connect((p["host"], p["port"]))
    except socket.timeout:
        return {"outcome": "timeout"}
    except ConnectionRefusedError:
        return {"outcome": "refused"}
    except OSError as e:
        return {"outcome": "unreachable", "errno": e.errno, "error": os.strerror(e.errno or 0)}
    data = b""
    try:
        if "send" in p:
            s.sendall(p["send"].encode("latin-1"))
        s.settimeout(p.get("readTimeout", 1.5))
        while len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    finally:
        s.close()
    return {"outcome": "connected", "data": data.decode("latin-1")}


def probe_udp(p):
    fam = socket.AF_INET6 if is6(p["host"]) else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(p.get("timeout", 1.0))
    try:
        s.connect((p["host"], p["port"]))
        s.send(bytes.fromhex(p.get("hex", "")) or b"probe")
        data = s.recv(4096)
        return {"outcome": "reply", "data": data.decode("latin-1")}
    except socket.timeout:
        return {"outcome": "noreply"}
    except OSError as e:
        return {"outcome": "error", "errno": e.errno, "error": os.strerror(e.errno or 0)}
    finally:
        s.close()


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def first_reply(sock, timeout, size, match):
    """Reads from a raw socket until `match(data, addr)` returns a result, or `timeout` seconds pass ("noreply")."""
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            return {"outcome": "noreply"}
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return {"outcome": "noreply"}
        data, addr = sock.recvfrom(size)
        result = match(data, addr)
        if result is not None:
            return result


def probe_icmp(p):
    v6 = is6(p["host"])
    ident = os.getpid() & 0xFFFF
    if v6:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        pkt = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"qig-probe"  # kernel fills the v6 checksum
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"qig-probe"
        pkt = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    def match(data, peer):
        icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
        if (v6 and icmp[0] == 129) or (not v6 and icmp[0] == 0):
            return {"outcome": "reply", "from": peer[0]}
        if icmp[0] in ((1, 3) if v6 else (3, 11)):
            return {"outcome": "error", "icmptype": icmp[0], "from": peer[0]}
        return None

    try:
        s.sendto(pkt, (p["host"], 0))
        return first_reply(s, p.get("timeout", 1.0), 4096, match)
    except OSError as e:
        return {"outcome": "error", "errno": e.errno, "error": os.strerror(e.errno or 0)}
    finally:
        s.close()


def probe_dns(p):
    qtype = QTYPE_NUM.get(p.get("qtype", "A"), 1)
    qid = int.from_bytes(os.urandom(2), "big")
    q = build_query(p["name"], qtype, qid, p.get("ecs"))
    fam = socket.AF_INET6 if is6(p["server"]) else socket.AF_INET
    timeout = p.get("timeout", 1.5)
    try:
        if p.get("tcp"):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect((p["server"], p.get("port", 53)))
                s.sendall(struct.pack("!H", len(q)) + q)
                ln = struct.unpack("!H", recv_exact(s, 2))[0]
                msg = recv_exact(s, ln)
            finally:
                s.close()
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(timeout)
            try:
                s.connect((p["server"], p.get("port", 53)))
                s.send(q)
                msg = s.recv(4096)
            finally:
                s.close()
    except socket.timeout:
        return {"outcome": "timeout"}
    except ConnectionRefusedError:
        return {"outcome": "refused"}
    except (OSError, EOFError) as e:
        return {"outcome": "error", "error": repr(e)}
    r = parse_response(msg)
    r["outcome"] = "answer"
    return r


def source_for(host):
    """The address the kernel would send from towards host (a connected UDP socket sends nothing)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host, 9))
        return s.getsockname()[0]
    finally:
        s.close()


def ip4_header(src, dst, proto, payload_len, ident, frag_field):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, frag_field, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]


TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}


def probe_tcpraw(p):
    """One TCP segment with the given flags ("" = NULL scan, "FPU" = Xmas); any TCP answer from host:port is a reply."""
    host, port = p["host"], p["port"]
    src = source_for(host)
    sport = 40000 + int.from_bytes(os.urandom(2), "big") % 20000
    flags = 0
    for c in p.get("flags", ""):
        flags |= TCP_FLAGS[c]
    seq = int.from_bytes(os.urandom(4), "big")
    tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, flags, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(host) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        tx.sendto(ip4_header(src, host, 6, len(tcp), os.getpid() & 0xFFFF, 0) + tcp, (host, 0))

        def match(data, peer):
            ihl = (data[0] & 0x0F) * 4
            sp, dp = struct.unpack("!HH", data[ihl:ihl + 4])
            if peer[0] == host and sp == port and dp == sport:
                return {"outcome": "reply", "tcpflags": data[ihl + 13]}
            return None

        return first_reply(rx, p.get("timeout", 1.0), 4096, match)
    finally:
        rx.close()
        tx.close()


def probe_frag(p):
    """A DNS query over UDP, sent as two IPv4 fragments; a reply means something reassembled and answered it."""
    server, port = p["server"], p.get("port", 53)
    src = source_for(server)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src, 0))
    sport = u.getsockname()[1]
    u.settimeout(p.get("timeout", 1.0))
    q = build_query(p["name"], QTYPE_NUM.get(p.get("qtype", "A"), 1), int.from_bytes(os.urandom(2), "big"))
    udp = struct.pack("!HHHH", sport, port, 8 + len(q), 0) + q
    pseudo = socket.inet_aton(src) + socket.inet_aton(server) + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    ident = int.from_bytes(os.urandom(2), "big")
    first, rest = udp[:16], udp[16:]
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        tx.sendto(ip4_header(src, server, 17, len(first), ident, 0x2000) + first, (server, 0))  # MF, offset 0
        tx.sendto(ip4_header(src, server, 17, len(rest), ident, 16 // 8) + rest, (server, 0))  # offset 16 bytes
        data = u.recv(4096)
        r = parse_response(data)
        r["outcome"] = "reply"
        return r
    except socket.timeout:
        return {"outcome": "noreply"}
    finally:
        tx.close()
        u.close()


def probe_l2syn(p):
    """A TCP SYN to p["dst"] (e.g. 127.0.0.1) in an Ethernet frame addressed to p["mac"] on p["iface"]: the
    routing decision is the receiver's. Any TCP answer from dst:port is a reply."""
    iface, dst, port = p["iface"], p["dst"], p["port"]
    with open(f"/sys/class/net/{iface}/address") as f:
        own_mac = bytes.fromhex(f.read().strip().replace(":", ""))
    src = p["src"]
    sport = 40000 + int.from_bytes(os.urandom(2), "big") % 20000
    tcp = struct.pack("!HHIIBBHHH", sport, port, int.from_bytes(os.urandom(4), "big"), 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    frame = bytes.fromhex(p["mac"].replace(":", "")) + own_mac + struct.pack("!H", 0x0800) + \
        ip4_header(src, dst, 6, len(tcp), os.getpid() & 0xFFFF, 0) + tcp
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((iface, 0))
    try:
        s.send(frame)

        def match(data, addr):
            ip = data[14:]
            if addr[2] == socket.PACKET_OUTGOING or len(ip) < 40 or ip[9] != 6:
                return None
            ihl = (ip[0] & 0x0F) * 4
            sp, dp = struct.unpack("!HH", ip[ihl:ihl + 4])
            if sp == port and dp == sport:
                return {"outcome": "reply", "from": socket.inet_ntoa(ip[12:16]), "tcpflags": ip[ihl + 13]}
            return None

        return first_reply(s, p.get("timeout", 1.0), 65535, match)
    finally:
        s.close()


def probe_l2dns(p):
    """A DNS query over UDP to p["dst"]:p["port"] (e.g. 127.0.0.1:5353) in an Ethernet frame addressed to p["mac"]
    on p["iface"], like l2syn: the routing decision is the receiver's. Any UDP answer from dst:port is a reply."""
    iface, dst, port = p["iface"], p["dst"], p.get("port", 53)
    with open(f"/sys/class/net/{iface}/address") as f:
        own_mac = bytes.fromhex(f.read().strip().replace(":", ""))
    src = p["src"]
    sport = 40000 + int.from_bytes(os.urandom(2), "big") % 20000
    q = build_query(p["name"], QTYPE_NUM.get(p.get("qtype", "A"), 1), int.from_bytes(os.urandom(2), "big"))
    udp = struct.pack("!HHHH", sport, port, 8 + len(q), 0) + q
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    frame = bytes.fromhex(p["mac"].replace(":", "")) + own_mac + struct.pack("!H", 0x0800) + \
        ip4_header(src, dst, 17, len(udp), os.getpid() & 0xFFFF, 0) + udp
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((iface, 0))
    try:
        s.send(frame)

        def match(data, addr):
            ip = data[14:]
            if addr[2] == socket.PACKET_OUTGOING or len(ip) < 28 or ip[9] != 17:
                return None
            ihl = (ip[0] & 0x0F) * 4
            sp, dp = struct.unpack("!HH", ip[ihl:ihl + 4])
            if sp == port and dp == sport:
                try:
                    r = parse_response(ip[ihl + 8:])
                except (struct.error, IndexError, ValueError):
                    r = {"data": ip[ihl + 8:].decode("latin-1")}  # an answer, if not DNS
                r.update({"outcome": "reply", "from": socket.inet_ntoa(ip[12:16])})
                return r
            return None

        return first_reply(s, p.get("timeout", 1.0), 65535, match)
    finally:
        s.close()


# ------------------------------------------------------------------------------------------------------ hold

def cmd_hold(a):
    """One TCP connection that stays open. Opens with HOLD (a Tor recorder then answers every line), prints
    OPEN <answer>; then, for each file N (1, 2, ...) that appears in --ctl, sends its text as one line and prints
    N <answer line> (or N FAIL <why>). The file `close` ends it."""
    def line_reply(s):
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed by the peer")
            buf += chunk
        return buf.split(b"\n", 1)[0].decode("latin-1")

    def say(text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    fam = socket.AF_INET6 if is6(a.host) else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((a.host, a.port))
        s.sendall(HOLD_LINE)
        say("OPEN " + line_reply(s))
    except (OSError, ConnectionError) as e:
        say(f"OPEN FAIL {e!r}")
        return
    n = 1
    deadline = time.time() + 300  # never outlive a test run
    while time.time() < deadline:
        if os.path.exists(os.path.join(a.ctl, "close")):
            break
        f = os.path.join(a.ctl, str(n))
        if not os.path.exists(f):
            time.sleep(0.02)
            continue
        with open(f) as fh:
            text = fh.read()
        try:
            s.sendall(text.encode("latin-1") + b"\n")
            say(f"{n} " + line_reply(s))
        except (OSError, ConnectionError) as e:
            say(f"{n} FAIL {e!r}")
        n += 1
    s.close()


PROBES = {"l2syn": probe_l2syn, "l2dns": probe_l2dns, "tcp": probe_tcp, "udp": probe_udp, "icmp": probe_icmp, "dns": probe_dns, "tcpraw": probe_tcpraw, "frag": probe_frag}


def cmd_probe(a):
    probes = json.loads(a.spec)
    results = [None] * len(probes)

    def run(i, p):
        try:
            results[i] = PROBES[p["kind"]](p)
        except Exception as e:  # a probe that crashes is a failed probe, and says why
            results[i] = {"outcome": "crash", "error": repr(e)}

    threads = [spawn(run, i, p) for i, p in enumerate(probes)]
    for t in threads:
        t.join(10)
    print(json.dumps(results))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--iface", action="append", default=[], help="record the frames arriving on this interface")
    up.add_argument("--watch", help="also record on every interface whose whole name matches this regex, as it appears")
    up.add_argument("--log", required=True)
    up.add_argument("--addr", action="append", default=[], help="serve DNS and UDP on this address")
    up.add_argument("--tcp", type=int, action="append", default=[])
    up.add_argument("--udp", type=int, action="append", default=[])
    tor = sub.add_parser("tor")
    tor.add_argument("--trans", required=True)
    tor.add_argument("--dns", required=True)
    tor.add_argument("--log", required=True)
    tor.add_argument("--control", help="also a control socket here (Tor's ControlSocket), cookie authentication")
    tor.add_argument("--cookie", help="where to write the cookie (Tor's CookieAuthFile)")
    tor.add_argument("--bootstrap", help="a file with the reply to GETINFO (e.g. a bootstrap-phase reply)")
    hp = sub.add_parser("http-proxy")
    hp.add_argument("--listen", action="append", required=True)
    hp.add_argument("--banner", required=True)
    hp.add_argument("--page", action="append", default=[], help="PORT:TARGET=FILE: serve FILE for that request target")
    hp.add_argument("--log", required=True)
    sy = sub.add_parser("sync")
    sy.add_argument("--iface", required=True)
    sy.add_argument("--token", required=True)
    pr = sub.add_parser("probe")
    pr.add_argument("spec")
    ho = sub.add_parser("hold")
    ho.add_argument("--host", required=True)
    ho.add_argument("--port", type=int, required=True)
    ho.add_argument("--ctl", required=True)
    a = ap.parse_args()
    {"up": cmd_up, "tor": cmd_tor, "http-proxy": cmd_http_proxy, "sync": cmd_sync, "probe": cmd_probe, "hold": cmd_hold}[a.cmd](a)


if __name__ == "__main__":
    main()

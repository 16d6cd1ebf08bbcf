"""Unit tests of gateway/qubes-i2p-gateway (`status`): its parsers against real captures (test/fixtures/), and its
verdicts against a stand-in for the gateway machine.

Run by test/gateway/programs.test.ts (`python3 -m unittest`), which renders the package's status.json for the
builds tested here into QIG_FACTS_DIR. The program itself runs for real in the datapath lab (test/net/status.test.ts).
"""
import copy
import errno
import importlib.machinery
import importlib.util
import io
import binascii
import json
import os
import socket
import sys
import tempfile
import threading
import unittest

sys.dont_write_bytecode = True  # nothing written next to the program under gateway/
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "test", "fixtures")


def load_program():
    path = os.path.join(ROOT, "gateway", "qubes-i2p-gateway")
    loader = importlib.machinery.SourceFileLoader("qig_status", path)
    spec = importlib.util.spec_from_loader("qig_status", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


P = load_program()


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), "r", encoding="utf-8") as f:
        return f.read()


def facts(name):
    d = os.environ.get("QIG_FACTS_DIR")
    if not d:
        raise RuntimeError("QIG_FACTS_DIR is not set: run these tests through test/gateway/programs.test.ts")
    with open(os.path.join(d, name + ".json"), "r", encoding="utf-8") as f:
        return json.load(f)


def proc_net_line(addr, port, state, uid):
    """A /proc/net/{tcp,udp} line as the kernel writes it (Documentation/networking/proc_net_tcp.rst): the IPv4
    address in host (little-endian) byte order, the port in hex."""
    a = "".join("%02X" % int(x) for x in reversed(addr.split(".")))
    return "   0: %s:%04X 00000000:0000 %s 00000000:00000000 00:00000000 00000000 %5d        0 1 1 0 100 0 0 10 0" % (a, port, state, uid)


# A site's keys file as i2pd writes it (ClientContext::LoadPrivateKeys): the Destination (256 bytes of encryption
# key, 128 of signing key, a key certificate: type 5, length 4, signing type 7 = Ed25519, crypto type 0), then the
# private keys. Its address, the base32 of the Destination's SHA-256, worked out here by hand (RFC 4648 alphabet).
SITE_DEST = bytes(range(256)) + bytes(128) + bytes([5, 0, 4, 0, 7, 0, 0])
SITE_KEYS = SITE_DEST + b"\x01" * 256 + b"\x02" * 64
SITE_ONION = "k2yb37jc5fp4xuoxsrt7q6rdico75u5wouaotsz4c7zeosfqlxizg4qd.onion"


def b32_by_hand(data):
    import hashlib
    digest = hashlib.sha256(data).digest()
    bits = "".join("{:08b}".format(b) for b in digest)
    bits += "0" * (-len(bits) % 5)
    return "".join("abcdefghijklmnopqrstuvwxyz234567"[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5)) + ".b32.i2p"


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"

# The shipped ruleset's listing, as nft prints it; the stand-in nft answers it for both the live table and the
# reference (its text does not matter here, only whether the two agree).
LISTING = "table inet qubes-i2p-gateway {\n\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n\t}\n}\n"
CHAIN = "table ip qubes {\n\tchain qubes-i2p-gateway-input {\n\t\tiifgroup 2 udp dport 53 accept\n\t}\n}\n"


class FakeGateway(P.System):
    """Stands for the gateway qube the program runs in: its files, users, commands (qubesdb-read, nft, unshare,
    systemctl), sockets, interfaces, and the answers of its dnsmasq, tinyproxy, router console, Tor control
    socket and of the leak probe. Starts as a healthy gateway (root, every daemon up, Tor bootstrapped, the
    router integrated, one client qube); each test breaks one thing. Records every command and connection."""

    USERS = {"debian-tor": (101, 101), "dnsmasq": (102, 65534), "tinyproxy": (103, 103), "i2pd": (104, 104),
             "i2psvc": (105, 105), "nobody": (65534, 65534)}

    def __init__(self, f):
        self.f = f
        self.uid = 0
        self.files = {f["serviceFlag"]: "", f["firewall"]["ruleset"]: "# the shipped ruleset\n"}
        self.qubesdb_values = {"/qubes-netvm-network": "10.137.0.1", "/connected-ips": "10.137.0.10", "/qubes-gateway": "10.138.0.1"}
        self.qubesdb_up = True
        self.ifaces = {"lo": "127.0.0.1", "eth0": "10.138.0.7", "vif3.0": "10.137.0.1"}
        self.tables = ["table ip qubes", "table inet qubes-i2p-gateway"]
        self.live_listing = LISTING
        self.reference_listing = LISTING
        self.custom_input = "table ip qubes {\n\tchain custom-input {\n\t\tjump qubes-i2p-gateway-input\n\t}\n}\n"
        self.counter = 7
        self.units = {}
        self.sock = {"tcp": [], "udp": []}
        for key, unit, user, listens in self.daemons():
            self.units[unit] = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "Result": "success",
                                "ConditionResult": "yes"}
            uid = self.USERS[user][0] if user else 61184
            for proto, at in listens:
                self.sock[proto].append((at["address"], at["port"], "0A" if proto == "tcp" else "07", uid))
        self.tor_reply = {"replies": [fixture("tor-control", "bootstrap-done.txt").strip()]}
        self.tor_cookies = []
        if f["tor"]["enabled"]:
            self.files[f["tor"]["cookieFile"]] = b"\x07" * 32
        self.pages = {"/": {"status": 200, "headers": {}, "body": fixture("i2pd-console", "main-2.56.0-integrated.html")},
                      "/?page=tunnels": {"status": 200, "headers": {}, "body": fixture("i2pd-console", "tunnels-2.56.0-integrated.html")}}
        self.console_requests = []
        self.proxy_answer = {"status": 404, "headers": {}, "body": "<title>I2Pd HTTP proxy</title> host not found"}
        self.dns_answers = {}
        self.dns_asked = []
        self.leak_result = (errno.EHOSTUNREACH, 0.001)
        self.leak_refusal_counts = True
        self.leak_calls = []
        self.commands = []
        # Published services (config `publish`): each listener open, the router's keys and Tor's hostname written,
        # each application answering through its listener.
        self.backend = {}
        self.backend_requests = []
        # Router i2pd, a destination per client: the one client's tunnel (i2pd-client-proxies), its keys, its proxy.
        cp = f.get("clientProxies")
        if cp:
            self.files[cp["tunnelsDir"] + "/" + cp["filePrefix"] + "10.137.0.10.conf"] = "[x]\ntype = httpproxy\nport = 31000\n"
            self.files["%s/%s10.137.0.10.dat" % (cp["keysDir"], cp["keysPrefix"])] = SITE_KEYS
            self.sock["tcp"].append(("127.0.0.1", 31000, "0A", self.USERS["i2pd"][0]))
            self.sock["tcp"].append((cp["frontAddress"], 31000, "0A", 61184))
        for pub in f.get("publish") or []:
            l = pub["listen"]
            self.sock["tcp"].append((l["address"], l["port"], "0A", 0))
            if pub["i2p"]:
                self.files[pub["i2p"]["keysFile"]] = SITE_KEYS
            if pub["onion"]:
                self.files[pub["onion"]["hostnameFile"]] = SITE_ONION + "\n"
            self.backend[l["port"]] = {"status": 200, "headers": {}, "body": ""}

    def daemons(self):
        f = self.f
        out = []
        if f["tor"]["enabled"]:
            t = f["tor"]
            out.append(("tor", t["unit"], t["user"], [("tcp", t["transPort"]), ("udp", t["dnsPort"])]))
            out.append(("dns-relay", f["dnsRelay"]["unit"], None, [("udp", f["dnsRelay"]["listen"]), ("tcp", f["dnsRelay"]["listen"])]))
        d = {"address": "10.137.0.1", "port": 53}
        out.append(("dnsmasq", f["dnsmasq"]["unit"], f["dnsmasq"]["user"], [("udp", d), ("tcp", d)]))
        out.append(("tinyproxy", f["tinyproxy"]["unit"], f["tinyproxy"]["user"], [("tcp", f["tinyproxy"]["listen"])]))
        r = f["router"]
        out.append(("router", r["unit"], r["user"], [("tcp", r["httpProxy"]), ("tcp", r["console"])]))
        return out

    # -- breaking things, as a test would
    def stop(self, key):
        """The daemon `key` is stopped: its unit inactive, its sockets gone, and what it answered unanswered."""
        for k, unit, user, listens in self.daemons():
            if k != key:
                continue
            self.units[unit].update(ActiveState="inactive", SubState="dead")
            for proto, at in listens:
                self.sock[proto] = [s for s in self.sock[proto] if (s[0], s[1]) != (at["address"], at["port"])]
        if key == "tor":
            self.tor_reply = {"error": "/run/qubes-i2p-gateway-tor/control: no such file or directory (ENOENT)"}
        if key == "router":
            self.pages = {}
            self.proxy_answer = {"status": 502, "headers": {"server": "tinyproxy/1.11.2"}, "body": "<p><em>Generated by tinyproxy version 1.11.2.</em></p>"}
        if key == "tinyproxy":
            self.proxy_answer = {"error": "ECONNREFUSED (connection refused)"}

    # -- the System interface
    def list_dir(self, path):
        return sorted(p[len(path) + 1:] for p in self.files if p.startswith(path + "/") and "/" not in p[len(path) + 1:])

    def euid(self):
        return self.uid

    def exists(self, path):
        return path in self.files

    def read_text(self, path):
        v = self.files.get(path)
        if isinstance(v, BaseException):
            raise v
        return v

    def read_bytes(self, path):
        v = self.files.get(path)
        if isinstance(v, BaseException):
            raise v
        if v is None:
            raise FileNotFoundError(path)
        return v if isinstance(v, bytes) else v.encode()

    def read_private(self, path, owner_uid, owner_name, limit, exact=None):
        """The stand-in's files, with the program's size rules (its link, type and owner rules are tested on real
        files in DaemonFiles)."""
        data = self.read_bytes(path)
        if exact is not None and len(data) != exact:
            raise P.UnsafeFile("%s has %d bytes, not %d" % (path, len(data), exact))
        if len(data) > limit:
            raise P.UnsafeFile("%s has %d bytes, more than %d" % (path, len(data), limit))
        return data

    def run(self, argv, stdin=None, timeout=3.0):
        self.commands.append(list(argv))
        cmd = argv[0]
        if cmd == "qubesdb-read":
            if not self.qubesdb_up:
                return 1, "", "Failed connect to local daemon\n"
            v = self.qubesdb_values.get(argv[1])
            return (0, v + "\n", "") if v is not None else (2, "", "Failed to read %s\n" % argv[1])
        if cmd == "systemctl":
            names = argv[argv.index("--") + 1:]
            blocks = []
            for n in names:
                props = self.units.get(n, {"LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead"})
                blocks.append("Id=%s\n" % n + "".join("%s=%s\n" % kv for kv in props.items()))
            return 0, "\n".join(blocks), ""
        if cmd == "nft":
            if self.uid != 0:
                return 1, "", "Error: Operation not permitted\n"
            if argv[1:] == ["list", "tables"]:
                return 0, "".join(t + "\n" for t in self.tables), ""
            if argv[1:] == ["list", "chain", "ip", "qubes", "custom-input"]:
                return (0, self.custom_input, "") if "table ip qubes" in self.tables else (1, "", "Error: No such file or directory\n")
            if argv[1:5] == ["-s", "-t", "list", "table"]:
                return 0, self.live_listing, ""
            if argv[1:5] == ["-s", "-t", "list", "chain"]:
                return 0, CHAIN, ""
            if argv[1:] == ["list", "chain", "inet", "qubes-i2p-gateway", "output"]:
                return 0, "\t\tcounter packets %d bytes 60 reject with icmpx admin-prohibited\n" % self.counter, ""
        if cmd == "unshare":
            # The shipped ruleset loaded into an empty namespace and listed.
            return 0, self.reference_listing + CHAIN, ""
        return None

    def user(self, name):
        return self.USERS.get(name)

    def sockets(self, proto):
        return list(self.sock[proto])

    def interfaces(self):
        return sorted(self.ifaces)

    def ipv4_of(self, iface):
        return self.ifaces.get(iface)

    def dns(self, server, name, tcp, timeout=3.0):
        self.dns_asked.append((server, name, tcp))
        running = {(s[0], s[1]) for s in self.sock["tcp" if tcp else "udp"]}
        if (server, 53) not in running:
            return {"error": "ECONNREFUSED (connection refused)" if tcp else "no answer within 3 s"}
        t = self.f["tor"]
        if name.endswith(".i2p"):
            return {"rcode": 0, "addresses": [self.f["virtualIp"]]}
        if not t["enabled"]:
            return {"rcode": 3, "addresses": []}
        if (t["dnsPort"]["address"], t["dnsPort"]["port"]) not in {(s[0], s[1]) for s in self.sock["udp"]}:
            return {"rcode": 2, "addresses": []}
        if (self.f["dnsRelay"]["listen"]["address"], self.f["dnsRelay"]["listen"]["port"]) not in {(s[0], s[1]) for s in self.sock["udp"]}:
            return {"rcode": 2, "addresses": []}
        if tcp and (self.f["dnsRelay"]["listen"]["address"], self.f["dnsRelay"]["listen"]["port"]) not in {(s[0], s[1]) for s in self.sock["tcp"]}:
            return {"rcode": 2, "addresses": []}
        if name.endswith("." + P.CLEARNET_TEST_DOMAIN) and "clearnet" in self.dns_answers:
            return self.dns_answers["clearnet"]
        return {"rcode": 0, "addresses": ["10.192.3.4" if name.endswith(".onion") else "116.202.120.166"]}

    def http(self, host, port, request, timeout=3.0):
        if port in self.backend:
            self.backend_requests.append((host, port, request.decode(), timeout))
            return copy.deepcopy(self.backend[port])
        r = self.f["router"]
        if port == r["console"]["port"]:
            self.console_requests.append(request.decode())
            path = request.decode().split(" ")[1]
            return copy.deepcopy(self.pages.get(path, {"error": "ECONNREFUSED (connection refused)"}))
        return copy.deepcopy(self.proxy_answer)

    def tor_control(self, path, cookie, commands, timeout=3.0):
        self.tor_cookies.append(cookie)
        return self.tor_reply

    def connect_as(self, uid, gid, host, port, timeout=2.0):
        self.leak_calls.append((uid, gid, host, port))
        if self.leak_refusal_counts and self.leak_result[0] in P.LOCAL_REFUSALS:
            self.counter += 1
        return self.leak_result


def run_status(gw):
    return P.Status(gw.f, gw).run()


def by_id(checks):
    return {c.id: c for c in checks}


class Parsers(unittest.TestCase):
    def test_proc_net(self):
        text = "\n".join([HEADER, proc_net_line("127.0.0.1", 5353, "0A", 61184), proc_net_line("0.0.0.0", 9040, "0A", 101),
                          proc_net_line("10.137.0.1", 53, "07", 102), "garbage line"])
        socks = P.parse_proc_net(text, False)
        self.assertEqual(socks, [("127.0.0.1", 5353, "0A", 61184), ("0.0.0.0", 9040, "0A", 101), ("10.137.0.1", 53, "07", 102)])
        self.assertEqual(P.listening(socks, "tcp", "0.0.0.0", 9040), [101])
        self.assertEqual(P.listening(socks, "udp", "10.137.0.1", 53), [102])
        self.assertEqual(P.listening(socks, "tcp", "10.137.0.1", 53), [], "a UDP socket is not a TCP listener")
        # IPv6 (four host-order words): ::ffff:127.0.0.1 is read as 127.0.0.1, :: as ::.
        v6 = HEADER + "\n   0: 0000000000000000FFFF00000100007F:14E9 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n" \
                      "   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 5 0 1\n"
        self.assertEqual(P.parse_proc_net(v6, True), [("127.0.0.1", 5353, "0A", 0), ("::", 8080, "0A", 5)])

    def test_this_machines_proc_net_parses(self):
        # The real kernel's table, whatever is in it: every line is read (none dropped as unparsable).
        for name in ("tcp", "udp"):
            with open("/proc/net/" + name) as f:
                text = f.read()
            self.assertEqual(len(P.parse_proc_net(text, False)), len(text.strip().splitlines()) - 1)

    def test_systemctl_show(self):
        text = "Id=a.service\nActiveState=active\nSubState=running\n\nId=b.service\nLoadState=not-found\nActiveState=inactive\n"
        self.assertEqual(P.parse_systemctl_show(text), {"a.service": {"Id": "a.service", "ActiveState": "active", "SubState": "running"},
                                                        "b.service": {"Id": "b.service", "LoadState": "not-found", "ActiveState": "inactive"}})

    def test_tor_bootstrap(self):
        stuck = P.parse_bootstrap(fixture("tor-control", "bootstrap-stuck-0.4.9.15.txt"))
        self.assertEqual(stuck, {"severity": "WARN", "progress": 5, "tag": "conn", "summary": "Connecting to a relay",
                                 "warning": "Connection refused", "liveness": "down"})
        done = P.parse_bootstrap(fixture("tor-control", "bootstrap-done.txt"))
        self.assertEqual((done["progress"], done["summary"], done["warning"], done["liveness"]), (100, "Done", None, "up"))
        self.assertIsNone(P.parse_bootstrap("250 OK"))
        self.assertIsNone(P.parse_bootstrap("250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=lots"))
        self.assertEqual(P.parse_kv('A=1 B="two \\"words\\"" C='), {"A": "1", "B": 'two "words"', "C": ""})

    def test_i2pd_main_page(self):
        fresh = P.parse_i2pd_main(fixture("i2pd-console", "main-2.56.0-no-network.html"))
        self.assertEqual(fresh, {"uptime": 8, "network": "Unknown", "success_rate": 10, "routers": 1, "floodfills": 0,
                                 "leasesets": 0, "client_tunnels": 2, "transit_tunnels": 0})
        up = P.parse_i2pd_main(fixture("i2pd-console", "main-2.56.0-integrated.html"))
        self.assertEqual((up["uptime"], up["network"], up["routers"], up["transit_tunnels"]), (2 * 3600 + 5 * 60 + 3, "Firewalled", 2517, 22))
        # Not a console page: nothing is guessed.
        self.assertEqual(P.parse_i2pd_main("<html><body>Welcome to nginx</body></html>"), {})
        self.assertEqual(P.parse_duration("1 day, 2 hours, 1 minute, 0 seconds"), 86400 + 7200 + 60)
        self.assertIsNone(P.parse_duration("soon"))

    def test_i2pd_tunnels_page(self):
        # Zero-hop tunnels (built with no peer at all) are not tunnels into the network.
        self.assertEqual(P.parse_i2pd_tunnels(fixture("i2pd-console", "tunnels-2.56.0-no-network.html")), (0, 2))
        # Three established through peers; building and failed ones do not count.
        self.assertEqual(P.parse_i2pd_tunnels(fixture("i2pd-console", "tunnels-2.56.0-integrated.html")), (3, 2))
        self.assertIsNone(P.parse_i2pd_tunnels("<html>404</html>"))

    def test_dns_messages(self):
        q = P.dns_build_query("foo.i2p", 0x1234)
        self.assertEqual(q[:2], b"\x12\x34")
        self.assertEqual(q[12:], b"\x03foo\x03i2p\x00\x00\x01\x00\x01")
        # An answer with a compression pointer back to the question's name.
        answer = bytearray(q)
        answer[2:4] = b"\x81\x80"
        answer[6:8] = b"\x00\x01"
        answer += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x64\x64\x64"
        self.assertEqual(P.dns_parse_response(bytes(answer), 0x1234), (0, ["10.100.100.100"]))
        with self.assertRaises(ValueError):
            P.dns_parse_response(bytes(answer), 0x9999)
        with self.assertRaises(ValueError):
            P.dns_parse_response(q, 0x1234)  # a query, not an answer

    def test_default_route(self):
        route = "Iface\tDestination\tGateway\tFlags\n" \
                "eth0\t000200C0\t00000000\t0001\n" \
                "eth0\t00000000\t0100A8C0\t0003\n"
        self.assertEqual(P.default_gateway(route), "192.168.0.1")
        self.assertIsNone(P.default_gateway("Iface\tDestination\tGateway\n"))

    def test_tinyproxy_pages_are_told_from_the_routers(self):
        tiny = {"status": 502, "body": '<em>Generated by <a href="https://tinyproxy.github.io/">tinyproxy</a> version 1.11.2.</em>'}
        self.assertTrue(P.tinyproxy_made(tiny))
        self.assertFalse(P.tinyproxy_made({"status": 500, "body": "<title>I2Pd HTTP proxy</title>"}))
        self.assertFalse(P.tinyproxy_made({"status": 200, "body": "Generated by tinyproxy"}))
        # tinyproxy 1.11.2's own page, as it sends it (headers lower-cased by the reader).
        own = {"status": 502, "headers": {"server": "tinyproxy/1.11.2"}, "body": "<p><em>Generated by tinyproxy version 1.11.2.</em></p>"}
        self.assertTrue(P.tinyproxy_made(own))
        self.assertTrue(P.tinyproxy_made({**own, "headers": {}}))
        self.assertTrue(P.tinyproxy_made({**own, "body": ""}))

    def test_wrap(self):
        self.assertEqual(P.wrap("a bb ccc dddd", 6, "  "), ["a bb", "  ccc", "  dddd"])
        self.assertEqual(P.wrap("averyveryverylongword x", 5), ["averyveryverylongword", "x"])


class Healthy(unittest.TestCase):
    def test_every_check_ok_exit_0(self):
        gw = FakeGateway(facts("default"))
        checks = run_status(gw)
        self.assertEqual([(c.id, c.status) for c in checks if c.status != P.OK], [])
        self.assertEqual([c.id for c in checks], [
            "qube.service", "qube.network", "qube.clients", "firewall.lockdown", "firewall.ruleset", "firewall.jump",
            "daemon.tor", "daemon.dns-relay", "daemon.dnsmasq", "daemon.tinyproxy", "daemon.router", "tor.bootstrap",
            "router.network", "clients.10.137.0.10", "dns.i2p", "dns.onion", "dns.tcp", "dns.clearnet", "http.i2p", "leak.output"])
        self.assertEqual(P.verdict(checks), P.OK)
        c = by_id(checks)
        self.assertIn("3 tunnels through peers", c["router.network"].summary)
        # The one client's own destination, as the status shows it for the user to check.
        self.assertEqual(c["clients.10.137.0.10"].summary, "%s (its proxy 127.0.0.1:31000, its HTTP front 127.0.0.4:31000)" % P.b32_of_keys(SITE_KEYS))
        self.assertIn("bootstrapped 100% (Done)", c["tor.bootstrap"].summary)
        # The leak probe ran as nobody, against the netvm from qubesdb, on the discard port.
        self.assertEqual(gw.leak_calls, [(65534, 65534, "10.138.0.1", 9)])
        # DNS went to dnsmasq on the client interface, the second .onion over TCP, each .onion name new.
        self.assertEqual([(s, tcp) for s, _, tcp in gw.dns_asked], [("10.137.0.1", False), ("10.137.0.1", False), ("10.137.0.1", True), ("10.137.0.1", False)])
        names = [n for _, n, _ in gw.dns_asked]
        self.assertEqual(names[0], P.I2P_TEST_NAME)
        self.assertRegex(names[3], r"^status-[a-z0-9]{12}\.torproject\.org$")
        self.assertTrue(names[1].endswith(".onion") and names[2].endswith(".onion") and names[1] != names[2])
        # Every run asks new names: no cache can answer for a Tor that stopped.
        again = FakeGateway(facts("default"))
        run_status(again)
        self.assertNotEqual([n for _, n, _ in again.dns_asked][1:], names[1:])

    def test_text_report_and_exit_code(self):
        out = io.StringIO()
        gw = FakeGateway(facts("default"))
        code = P.main(["status", "--facts", os.path.join(os.environ["QIG_FACTS_DIR"], "default.json")], gw, out)
        text = out.getvalue()
        self.assertEqual(code, 0)
        self.assertTrue(text.startswith("qubes-i2p-gateway status: sys-i2p (router i2pd, Tor on)\n"))
        self.assertIn("\n  [ OK ] service flag ", text)
        self.assertTrue(text.endswith("OK: the gateway works (exit 0)\n"), text)
        self.assertNotIn("\033[", text, "no colour unless on a terminal")
        self.assertNotIn("fix:", text)

    def test_json_report(self):
        out = io.StringIO()
        gw = FakeGateway(facts("default"))
        gw.stop("dnsmasq")
        code = P.main(["status", "--json", "--facts", os.path.join(os.environ["QIG_FACTS_DIR"], "default.json")], gw, out)
        doc = json.loads(out.getvalue())
        self.assertEqual((code, doc["verdict"], doc["exit"], doc["root"], doc["gateway"]), (2, "fail", 2, True, "sys-i2p"))
        d = [c for c in doc["checks"] if c["id"] == "daemon.dnsmasq"][0]
        self.assertEqual(set(d), {"group", "id", "title", "status", "summary", "fix", "needsRoot"})
        self.assertEqual(d["status"], "fail")

    def test_colour_only_when_asked_or_on_a_terminal(self):
        gw = FakeGateway(facts("default"))
        checks = run_status(gw)
        self.assertIn("\033[32m OK \033[0m", P.render_text(gw.f, checks, True))

        class Tty(io.StringIO):
            def isatty(self):
                return True

        self.assertTrue(P.use_colour(Tty(), {"TERM": "xterm"}))
        self.assertFalse(P.use_colour(Tty(), {"TERM": "xterm", "NO_COLOR": "1"}))
        self.assertFalse(P.use_colour(Tty(), {"TERM": "dumb"}))
        self.assertFalse(P.use_colour(io.StringIO(), {"TERM": "xterm"}))


class EachDaemonStopped(unittest.TestCase):
    def test_each_daemon_fails_with_its_fix_and_exit_2(self):
        f = facts("default")
        units = {"tor": f["tor"]["unit"], "dns-relay": f["dnsRelay"]["unit"], "dnsmasq": f["dnsmasq"]["unit"],
                 "tinyproxy": f["tinyproxy"]["unit"], "router": f["router"]["unit"]}
        for key, unit in units.items():
            with self.subTest(daemon=key):
                gw = FakeGateway(f)
                gw.stop(key)
                checks = run_status(gw)
                c = by_id(checks)["daemon." + key]
                self.assertEqual(c.status, P.FAIL)
                self.assertIn("%s is inactive (dead)" % unit, c.summary)
                short = unit.replace(".service", "")
                self.assertEqual(c.fix, "sudo systemctl restart %s (journalctl -b -u %s says why it stopped)" % (short, short))
                self.assertEqual(P.EXIT[P.verdict(checks)], 2)
                failing = sorted(x.id for x in checks if x.status == P.FAIL)
                # Only the daemon and what depends on it fail, and those point at the daemon's line.
                expected = {"tor": ["daemon.tor", "dns.clearnet", "dns.onion", "dns.tcp", "tor.bootstrap"],
                            "dns-relay": ["daemon.dns-relay", "dns.clearnet", "dns.onion", "dns.tcp"],
                            "dnsmasq": ["daemon.dnsmasq", "dns.clearnet", "dns.i2p", "dns.onion", "dns.tcp"],
                            "tinyproxy": ["daemon.tinyproxy", "http.i2p"],
                            "router": ["daemon.router", "http.i2p", "router.network"]}[key]
                self.assertEqual(failing, expected)
                for x in checks:
                    if x.status == P.FAIL and x.id != "daemon." + key:
                        self.assertRegex(x.fix, r"^fix the .* line above first$", x.id)

    def test_a_port_held_by_another_user_fails(self):
        gw = FakeGateway(facts("default"))
        gw.sock["tcp"] = [(a, p, s, 1000 if p == 8888 else u) for a, p, s, u in gw.sock["tcp"]]
        c = by_id(run_status(gw))["daemon.tinyproxy"]
        self.assertEqual(c.status, P.FAIL)
        self.assertEqual(c.summary, "tcp 0.0.0.0:8888 is held by uid 1000, not tinyproxy")

    def test_active_unit_without_its_listener_fails(self):
        gw = FakeGateway(facts("default"))
        gw.sock["udp"] = [s for s in gw.sock["udp"] if s[1] != 5353]
        c = by_id(run_status(gw))["daemon.tor"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("active (running) but nothing listens on udp 127.0.0.1:5353 (DNSPort)", c.summary)

    def test_a_starting_unit_waits_and_a_missing_one_fails(self):
        gw = FakeGateway(facts("default"))
        gw.units[gw.f["router"]["unit"]].update(ActiveState="activating", SubState="start")
        self.assertEqual(by_id(run_status(gw))["daemon.router"].status, P.WAIT)
        gw = FakeGateway(facts("default"))
        del gw.units[gw.f["tinyproxy"]["unit"]]
        c = by_id(run_status(gw))["daemon.tinyproxy"]
        self.assertEqual((c.status, c.summary), (P.FAIL, "qubes-i2p-gateway-tinyproxy.service is not installed"))

    def router_before_its_ports(self, active_for):
        """i2pd's unit active for `active_for` seconds, its console and HTTP proxy not open yet (it reseeds first)."""
        gw = FakeGateway(facts("default"))
        gw.monotonic = lambda: 5000.0
        gw.units[gw.f["router"]["unit"]]["ActiveEnterTimestampMonotonic"] = str(int((5000.0 - active_for) * 1e6))
        gw.stop("router")
        gw.units[gw.f["router"]["unit"]].update(ActiveState="active", SubState="running")
        return gw

    def test_a_router_reseeding_before_its_ports_open_waits_and_so_do_its_lines(self):
        # Seen in the booted gateway on the lab's private network: i2pd active 0-5 s after the boot settled, nothing
        # listening yet (it opens its console and proxies after its first reseed); the report said FAIL.
        checks = run_status(self.router_before_its_ports(5))
        c = by_id(checks)
        self.assertEqual(c["daemon.router"].status, P.WAIT)
        self.assertIn("i2pd.service has been active (running) for 5 s and does not listen on tcp 127.0.0.1:4444 (HTTP proxy), "
                      "tcp 127.0.0.1:7070 (console) yet", c["daemon.router"].summary)
        self.assertIn("journalctl -b -u i2pd", c["daemon.router"].fix)
        self.assertEqual((c["router.network"].status, c["router.network"].summary),
                         (P.WAIT, "not asked yet: the i2pd line above is still starting"))
        self.assertEqual(c["http.i2p"].status, P.WAIT)
        self.assertIn("HTTP 502 from tinyproxy itself", c["http.i2p"].summary)
        self.assertEqual([x.id for x in checks if x.status == P.FAIL], [])
        self.assertEqual(P.EXIT[P.verdict(checks)], 1)

    def test_a_router_whose_ports_stay_closed_fails(self):
        for active_for in (P.ROUTER_PORTS_SECONDS + 1, 3600):
            with self.subTest(active_for=active_for):
                checks = run_status(self.router_before_its_ports(active_for))
                c = by_id(checks)
                self.assertEqual(c["daemon.router"].status, P.FAIL)
                self.assertIn("i2pd.service is active (running) but nothing listens on tcp 127.0.0.1:4444", c["daemon.router"].summary)
                self.assertEqual(c["router.network"].status, P.FAIL)
                self.assertEqual(c["http.i2p"].status, P.FAIL)
                self.assertEqual(P.EXIT[P.verdict(checks)], 2)
        # Without systemd's timestamp (an older systemd, or none): no claim that it is starting.
        gw = self.router_before_its_ports(5)
        del gw.units[gw.f["router"]["unit"]]["ActiveEnterTimestampMonotonic"]
        self.assertEqual(by_id(run_status(gw))["daemon.router"].status, P.FAIL)

    def test_only_the_router_gets_time_to_open_its_ports(self):
        gw = FakeGateway(facts("default"))
        gw.monotonic = lambda: 5000.0
        gw.units[gw.f["tinyproxy"]["unit"]]["ActiveEnterTimestampMonotonic"] = str(int(4995 * 1e6))
        gw.sock["tcp"] = [x for x in gw.sock["tcp"] if x[1] != 8888]
        self.assertEqual(by_id(run_status(gw))["daemon.tinyproxy"].status, P.FAIL)

    def test_condition_failed_unit_points_at_the_flag(self):
        gw = FakeGateway(facts("default"))
        gw.units[gw.f["dnsmasq"]["unit"]].update(ActiveState="inactive", SubState="dead", ConditionResult="no")
        c = by_id(run_status(gw))["daemon.dnsmasq"]
        self.assertIn("its condition (the service flag) did not hold at boot", c.summary)

    def test_without_systemctl_the_listeners_decide_and_say_so(self):
        gw = FakeGateway(facts("default"))
        real = gw.run
        gw.run = lambda argv, stdin=None, timeout=3.0: None if argv[0] == "systemctl" else real(argv, stdin, timeout)
        c = by_id(run_status(gw))["daemon.tor"]
        self.assertEqual(c.status, P.OK)
        self.assertIn("unit state unknown", c.summary)


class Router(unittest.TestCase):
    def young_router_without_tunnels(self):
        gw = FakeGateway(facts("default"))
        gw.pages["/"]["body"] = fixture("i2pd-console", "main-2.56.0-no-network.html")
        gw.pages["/?page=tunnels"]["body"] = fixture("i2pd-console", "tunnels-2.56.0-no-network.html")
        return gw

    def test_up_but_no_tunnels_is_still_integrating_wait_exit_1(self):
        gw = self.young_router_without_tunnels()
        checks = run_status(gw)
        c = by_id(checks)["router.network"]
        self.assertEqual(c.status, P.WAIT)
        self.assertEqual(c.summary, "still integrating: network Unknown, 1 routers known, 0 tunnels through peers (2 zero-hop), 0 participating, up 8 s")
        self.assertEqual(P.EXIT[P.verdict(checks)], 1)

    def test_the_waiting_page_is_a_wait_not_a_working_path(self):
        gw = self.young_router_without_tunnels()
        gw.proxy_answer = {"status": 503, "headers": {}, "body": '<meta name="qubes-i2p-gateway" content="router-not-ready">\n<h1>The I2P router is still joining the network</h1>'}
        c = by_id(run_status(gw))["http.i2p"]
        self.assertEqual(c.status, P.WAIT)
        self.assertIn("waiting page", c.summary)
        # Any other 503 (a site's own) is the router's answer: the path works.
        gw.proxy_answer = {"status": 503, "headers": {}, "body": "<h1>busy</h1>"}
        self.assertEqual(by_id(run_status(gw))["http.i2p"].status, P.OK)

    def test_the_waiting_page_for_an_unknown_name_is_a_working_path(self):
        # The router is ready and answered; only its address book is empty (no subscription fetched yet).
        gw = self.young_router_without_tunnels()
        gw.proxy_answer = {"status": 503, "headers": {}, "body": '<meta name="qubes-i2p-gateway" content="router-not-ready">\n<title>The I2P router does not know this name yet</title>'}
        c = by_id(run_status(gw))["http.i2p"]
        self.assertEqual(c.status, P.OK)
        self.assertIn("address book has no names yet", c.summary)

    def test_no_tunnels_long_after_start_is_broken(self):
        gw = self.young_router_without_tunnels()
        gw.pages["/"]["body"] = gw.pages["/"]["body"].replace("<b>Uptime:</b> 8 seconds", "<b>Uptime:</b> 1 hour, 2 minutes, 0 seconds")
        c = by_id(run_status(gw))["router.network"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("cannot reach the I2P network to reseed", c.fix)
        # Many routers known but still no tunnel: a different fix.
        gw.pages["/"]["body"] = gw.pages["/"]["body"].replace("<b>Routers:</b> 1 ", "<b>Routers:</b> 900 ")
        c = by_id(run_status(gw))["router.network"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("builds no tunnels (success rate 10%)", c.fix)

    def test_clock_skew_is_broken_at_once(self):
        gw = FakeGateway(facts("default"))
        gw.pages["/"]["body"] = gw.pages["/"]["body"].replace("Network status:</b> Firewalled", "Network status:</b> Firewalled - Clock skew")
        c = by_id(run_status(gw))["router.network"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("clock is off", c.fix)

    def test_an_unreadable_console_is_never_ok(self):
        for body in ("<html>Welcome to nginx</html>", fixture("i2pd-console", "main-2.56.0-integrated.html").replace("Routers:", "Peers:")):
            gw = FakeGateway(facts("default"))
            gw.pages["/"]["body"] = body
            checks = run_status(gw)
            c = by_id(checks)["router.network"]
            self.assertEqual(c.status, P.UNKNOWN)
            self.assertIn("could not be read", c.summary)
            self.assertEqual(P.EXIT[P.verdict(checks)], 3)
        gw = FakeGateway(facts("default"))
        gw.pages["/?page=tunnels"] = {"status": 500, "headers": {}, "body": ""}
        self.assertEqual(by_id(run_status(gw))["router.network"].status, P.UNKNOWN)

    def test_console_asks_for_the_host_it_listens_on(self):
        gw = FakeGateway(facts("default"))
        run_status(gw)
        self.assertTrue(gw.console_requests[0].startswith("GET / HTTP/1.1\r\nHost: 127.0.0.1:7070\r\n"), gw.console_requests[0])
        self.assertNotIn("Authorization", gw.console_requests[0])

    def test_console_password(self):
        # i2pd's console always asks for the password i2pd-console-auth made at the router's first start; the facts
        # name its file, which only root (and the router's user) can read.
        f = facts("default")
        self.assertEqual((f["router"]["console"]["user"], f["router"]["console"]["passwordFile"]), ("i2pd", "/var/lib/i2pd/qubes-i2p-gateway-console.pass"))
        gw = FakeGateway(f)
        gw.files[f["router"]["console"]["passwordFile"]] = PermissionError(13, "Permission denied")
        gw.pages["/"] = {"status": 401, "headers": {}, "body": ""}
        gw.uid = 1000
        c = by_id(run_status(gw))["router.network"]
        self.assertEqual((c.status, c.needs_root), (P.UNKNOWN, True))
        self.assertIn("needs root to read /var/lib/i2pd/qubes-i2p-gateway-console.pass", c.summary)
        # Root reads it and sends it (Basic, user i2pd): 32 letters and digits, as i2pd-console-auth makes it.
        gw = FakeGateway(f)
        gw.files[f["router"]["console"]["passwordFile"]] = "s3cret" * 5 + "42"
        self.assertEqual(by_id(run_status(gw))["router.network"].status, P.OK)
        self.assertIn("Authorization: Basic aTJwZDpzM2NyZXRzM2NyZXRzM2NyZXRzM2NyZXRzM2NyZXQ0Mg==\r\n", gw.console_requests[0])
        # No file yet (the router never started), or a build whose facts name none: not checked, never OK.
        for drop in (False, True):
            f2 = copy.deepcopy(f)
            if drop:
                del f2["router"]["console"]["passwordFile"]
            gw = FakeGateway(f2)
            gw.pages["/"] = {"status": 401, "headers": {}, "body": ""}
            c = by_id(run_status(gw))["router.network"]
            self.assertEqual((c.status, c.needs_root), (P.UNKNOWN, False))
            self.assertIn("no console password is known" if drop else "does not exist", c.summary)

    def test_java_router_progress_is_not_claimed(self):
        gw = FakeGateway(facts("java"))
        checks = run_status(gw)
        c = by_id(checks)["router.network"]
        self.assertEqual(c.status, P.UNKNOWN)
        self.assertIn("http://127.0.0.1:7657/", c.fix)
        self.assertEqual(by_id(checks)["daemon.router"].summary, "active (running), listening on tcp 127.0.0.1:4444, tcp 127.0.0.1:7657")


class TorProgress(unittest.TestCase):
    def test_bootstrapping_tor_waits_and_so_does_a_public_name(self):
        gw = FakeGateway(facts("default"))
        gw.tor_reply = {"replies": [fixture("tor-control", "bootstrap-stuck-0.4.9.15.txt").strip()]}
        gw.dns_answers["clearnet"] = {"error": "no answer within 3 s"}
        checks = run_status(gw)
        c = by_id(checks)
        self.assertEqual(c["tor.bootstrap"].status, P.WAIT)
        self.assertEqual(c["tor.bootstrap"].summary, "bootstrapped 5% (Connecting to a relay); Tor warns: Connection refused")
        self.assertEqual(c["dns.clearnet"].status, P.WAIT)
        self.assertEqual(c["dns.onion"].status, P.OK, ".onion names are mapped without the Tor network")
        self.assertEqual(P.EXIT[P.verdict(checks)], 1)

    def test_public_name_failing_with_tor_bootstrapped_is_broken(self):
        gw = FakeGateway(facts("default"))
        gw.dns_answers["clearnet"] = {"rcode": 2, "addresses": []}
        self.assertEqual(by_id(run_status(gw))["dns.clearnet"].status, P.FAIL)

    def test_no_such_name_through_tor_counts(self):
        gw = FakeGateway(facts("default"))
        gw.dns_answers["clearnet"] = {"rcode": 3, "addresses": []}
        c = by_id(run_status(gw))["dns.clearnet"]
        self.assertEqual((c.status, c.summary), (P.OK, "a new name under torproject.org -> no such name, answered through Tor"))

    def test_a_onion_answer_outside_tors_range_fails(self):
        gw = FakeGateway(facts("default"))
        real = gw.dns
        gw.dns = lambda server, name, tcp, timeout=3.0: {"rcode": 0, "addresses": ["172.31.1.66"]} if name.endswith(".onion") else real(server, name, tcp)
        c = by_id(run_status(gw))
        self.assertEqual((c["dns.onion"].status, c["dns.tcp"].status), (P.FAIL, P.FAIL))

    def test_tor_refusing_the_cookie_fails(self):
        gw = FakeGateway(facts("default"))
        gw.tor_reply = {"error": "Tor refused the cookie: 515 Authentication failed"}
        self.assertEqual(by_id(run_status(gw))["tor.bootstrap"].status, P.FAIL)


class Firewall(unittest.TestCase):
    def test_ruleset_missing_reports_the_lockdown(self):
        gw = FakeGateway(facts("default"))
        gw.tables = ["table ip qubes", "table inet qubes-i2p-gateway-lockdown"]
        gw.custom_input = "table ip qubes {\n\tchain custom-input {\n\t}\n}\n"
        checks = run_status(gw)
        c = by_id(checks)
        self.assertEqual(c["firewall.lockdown"].status, P.FAIL)
        self.assertIn("client qubes are cut off", c["firewall.lockdown"].summary)
        self.assertIn("systemctl restart qubes-firewall", c["firewall.lockdown"].fix)
        self.assertEqual((c["firewall.ruleset"].status, c["firewall.ruleset"].summary), (P.FAIL, "table inet qubes-i2p-gateway is not loaded"))
        self.assertEqual(c["firewall.jump"].status, P.FAIL)
        self.assertEqual(P.EXIT[P.verdict(checks)], 2)

    def test_a_ruleset_that_differs_from_the_shipped_one_fails_with_the_line(self):
        gw = FakeGateway(facts("default"))
        gw.live_listing = LISTING.replace("policy drop", "policy accept")
        c = by_id(run_status(gw))["firewall.ruleset"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("loaded 'type filter hook output priority filter; policy accept;' where it ships 'type filter hook output priority filter; policy drop;'", c.summary)
        # The reference is the shipped file, loaded in an empty network namespace.
        ref = [a for a in gw.commands if a[0] == "unshare"][0]
        self.assertEqual(ref[:3], ["unshare", "--net", "--"])

    def test_no_qubes_tables_at_all(self):
        gw = FakeGateway(facts("default"))
        gw.tables = ["table inet qubes-i2p-gateway-lockdown"]
        c = by_id(run_status(gw))
        self.assertIn("Qubes' own firewall is not loaded", c["firewall.jump"].summary)

    def test_shipped_ruleset_unreadable(self):
        gw = FakeGateway(facts("default"))
        del gw.files[gw.f["firewall"]["ruleset"]]
        c = by_id(run_status(gw))["firewall.ruleset"]
        self.assertEqual((c.status, c.summary), (P.FAIL, "/usr/share/qubes-i2p-gateway/firewall.nft is missing"))


class WithoutRoot(unittest.TestCase):
    def test_checks_that_need_root_say_so_and_the_verdict_is_incomplete(self):
        gw = FakeGateway(facts("default"))
        gw.uid = 1000
        checks = run_status(gw)
        unknown = [c.id for c in checks if c.status == P.UNKNOWN]
        self.assertEqual(unknown, ["firewall.lockdown", "firewall.ruleset", "firewall.jump", "tor.bootstrap"])
        self.assertTrue(all(c.needs_root for c in checks if c.status == P.UNKNOWN))
        self.assertEqual(P.EXIT[P.verdict(checks)], 3)
        self.assertFalse(any(a[0] == "nft" for a in gw.commands), "no nft call without root")
        # The leak probe ran as this user itself (only root can switch to nobody).
        self.assertEqual(gw.leak_calls, [(1000, os.getegid(), "10.138.0.1", 9)])
        self.assertIn("root also reads the firewall's counter", by_id(checks)["leak.output"].summary)
        text = P.render_text(gw.f, checks, False)
        self.assertIn("4 checks need root: sudo qubes-i2p-gateway status here, or in dom0: qvm-run -p --no-gui -u root sys-i2p 'qubes-i2p-gateway status'", text)
        self.assertTrue(text.endswith("INCOMPLETE: nothing failed, but not everything could be checked: 4 not checked (exit 3)\n"))

    def test_a_failure_still_wins_over_what_could_not_be_checked(self):
        gw = FakeGateway(facts("default"))
        gw.uid = 1000
        gw.stop("tinyproxy")
        self.assertEqual(P.EXIT[P.verdict(run_status(gw))], 2)

    def test_running_as_tors_user_does_not_probe_for_leaks(self):
        gw = FakeGateway(facts("default"))
        gw.uid = 101
        c = by_id(run_status(gw))["leak.output"]
        self.assertEqual(c.status, P.UNKNOWN)
        self.assertEqual(gw.leak_calls, [])


class Leak(unittest.TestCase):
    def test_a_connection_that_gets_out_is_a_leak(self):
        for result, words in (("connected", "LEAK: nobody reached 10.138.0.1:9"),
                              ((errno.ECONNREFUSED, 0.01), "ECONNREFUSED (connection refused)"),
                              (("timeout", 2.0), "no answer within 2 s")):
            gw = FakeGateway(facts("default"))
            gw.leak_result = result if isinstance(result, tuple) else (result, 0.01)
            c = by_id(run_status(gw))["leak.output"]
            self.assertEqual(c.status, P.FAIL, words)
            self.assertIn(words, c.summary)

    def test_a_refusal_not_counted_by_our_output_chain_is_not_trusted(self):
        gw = FakeGateway(facts("default"))
        gw.leak_refusal_counts = False
        c = by_id(run_status(gw))["leak.output"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("not at the gateway's output chain", c.summary)

    def test_netvm_from_the_default_route_without_qubesdb(self):
        gw = FakeGateway(facts("default"))
        gw.qubesdb_up = False
        gw.files["/proc/net/route"] = "Iface\tDestination\tGateway\tFlags\neth0\t00000000\t0100A8C0\t0003\n"
        checks = run_status(gw)
        self.assertEqual(gw.leak_calls[0][2], "192.168.0.1")
        c = by_id(checks)
        self.assertEqual(c["qube.network"].status, P.OK)
        self.assertIn("by the kernel's view (client interfaces vif3.0)", c["qube.network"].summary)


class TheQube(unittest.TestCase):
    def test_service_flag_absent_stops_after_the_qube(self):
        gw = FakeGateway(facts("default"))
        del gw.files[gw.f["serviceFlag"]]
        checks = run_status(gw)
        self.assertEqual([c.id for c in checks], ["qube.service", "qube.network", "qube.clients"])
        c = checks[0]
        self.assertEqual(c.status, P.FAIL)
        self.assertEqual(c.fix, "in dom0: qvm-service --enable sys-i2p i2p, then restart sys-i2p")
        self.assertEqual(P.EXIT[P.verdict(checks)], 2)
        self.assertFalse(any(a[0] in ("nft", "systemctl") for a in gw.commands))

    def test_not_providing_network(self):
        gw = FakeGateway(facts("default"))
        del gw.qubesdb_values["/qubes-netvm-network"]
        c = by_id(run_status(gw))["qube.network"]
        self.assertEqual((c.status, c.fix), (P.FAIL, "in dom0: qvm-prefs sys-i2p provides_network True"))

    def test_no_client_qube_leaves_the_self_tests_unchecked(self):
        gw = FakeGateway(facts("default"))
        del gw.ifaces["vif3.0"]
        del gw.qubesdb_values["/connected-ips"]
        gw.sock = {p: [s for s in v if s[0] != "10.137.0.1"] for p, v in gw.sock.items()}
        checks = run_status(gw)
        c = by_id(checks)
        self.assertEqual(c["qube.clients"].summary, "none connected yet (in dom0: qvm-prefs CLIENT netvm sys-i2p)")
        self.assertEqual(c["daemon.dnsmasq"].status, P.OK)
        self.assertIn("no client interface yet", c["daemon.dnsmasq"].summary)
        self.assertEqual([x.id for x in checks if x.status == P.UNKNOWN], ["dns.i2p", "dns.onion", "dns.tcp", "dns.clearnet", "http.i2p"])
        self.assertEqual(P.EXIT[P.verdict(checks)], 3)


class TorOff(unittest.TestCase):
    def test_no_tor_lines_and_other_names_refused(self):
        gw = FakeGateway(facts("tor-off"))
        checks = run_status(gw)
        ids = [c.id for c in checks]
        self.assertFalse([i for i in ids if "tor" in i or "onion" in i or "relay" in i or i == "dns.tcp"], ids)
        self.assertEqual([(c.id, c.status) for c in checks if c.status != P.OK], [])
        self.assertIn("refused by dnsmasq (Tor is off", by_id(checks)["dns.clearnet"].summary)

    def test_an_address_for_another_name_with_tor_off_fails(self):
        gw = FakeGateway(facts("tor-off"))
        real = gw.dns
        gw.dns = lambda server, name, tcp, timeout=3.0: {"rcode": 0, "addresses": ["172.31.1.66"]} if name.endswith(".torproject.org") else real(server, name, tcp)
        self.assertEqual(by_id(run_status(gw))["dns.clearnet"].status, P.FAIL)


class FactsFile(unittest.TestCase):
    def test_wrong_format_is_refused(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as t:
            json.dump({"format": 99}, t)
        try:
            err = io.StringIO()
            old, sys.stderr = sys.stderr, err
            try:
                self.assertEqual(P.main(["status", "--facts", t.name], FakeGateway(facts("default")), io.StringIO()), 2)
            finally:
                sys.stderr = old
            self.assertIn("has format 99; this program reads format 1", err.getvalue())
        finally:
            os.unlink(t.name)


class Published(unittest.TestCase):
    """The published services' lines (config `publish`): addresses, listener, the application through qrexec."""

    def test_a_build_without_services_has_no_such_line(self):
        self.assertEqual([c.id for c in run_status(FakeGateway(facts("default"))) if c.group == "publish"], [])

    def test_healthy_addresses_and_answers(self):
        gw = FakeGateway(facts("publish"))
        checks = run_status(gw)
        pub = [c for c in checks if c.group == "publish"]
        self.assertEqual([(c.id, c.title, c.status) for c in pub],
                         [("publish.wiki", "wiki (webapp:8080)", P.OK), ("publish.blog", "blog (blogvm:80)", P.OK)])
        b32 = b32_by_hand(SITE_DEST)
        self.assertEqual(P.b32_of_keys(SITE_KEYS), b32)
        self.assertEqual(pub[0].summary, "%s, %s; the application answers (HTTP 200)" % (b32, SITE_ONION))
        self.assertEqual(pub[1].summary, "%s; the application answers (HTTP 200)" % b32)
        self.assertEqual(P.verdict(checks), P.OK)
        # One HEAD through each listener, for the site's own name, with time for qrexec to start the qube.
        self.assertEqual([(h, p, r.split("\r\n")[:2], t) for h, p, r, t in gw.backend_requests],
                         [("127.0.0.1", 28080, ["HEAD / HTTP/1.1", "Host: " + b32], P.BACKEND_TIMEOUT),
                          ("127.0.0.1", 28081, ["HEAD / HTTP/1.1", "Host: " + b32], P.BACKEND_TIMEOUT)])

    def test_listener_closed(self):
        gw = FakeGateway(facts("publish"))
        gw.sock["tcp"] = [x for x in gw.sock["tcp"] if x[1] != 28080]
        c = by_id(run_status(gw))["publish.wiki"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("nothing listens on 127.0.0.1:28080", c.summary)
        self.assertEqual(c.fix, "sudo systemctl restart qubes-i2p-gateway-publish-wiki.socket")

    def test_application_unreachable_through_qrexec(self):
        # A refused qrexec call (no policy, no such qube) closes the connection without a word.
        gw = FakeGateway(facts("publish"))
        gw.backend[28080] = {"error": "not an HTTP answer"}
        c = by_id(run_status(gw))["publish.wiki"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("does not answer through qrexec: not an HTTP answer", c.summary)
        self.assertIn("i2p-gateway.publish", c.fix)
        self.assertIn("127.0.0.1:8080", c.fix)
        self.assertEqual(P.verdict(run_status(gw)), P.FAIL)

    def test_addresses_need_root(self):
        gw = FakeGateway(facts("publish"))
        f = [p for p in gw.f["publish"] if p["name"] == "wiki"][0]
        gw.files[f["i2p"]["keysFile"]] = PermissionError(13, "Permission denied")
        gw.files[f["onion"]["hostnameFile"]] = PermissionError(13, "Permission denied")
        c = by_id(run_status(gw))["publish.wiki"]
        self.assertEqual((c.status, c.needs_root), (P.UNKNOWN, True))
        self.assertEqual(c.summary, "no address read (I2P: needs root; onion: needs root); the application answers (HTTP 200)")

    def test_a_site_without_its_addresses_is_not_published_yet(self):
        # Right after boot i2pd has not made the site's keys yet (nor Tor its hostname): the site has no address, so
        # it is not published yet, whatever the application answers. WAIT while the daemons are starting, OK once
        # made; FAIL when the daemon that makes them is not running, or ran long enough that it should have.
        gw = FakeGateway(facts("publish"))
        f = [p for p in gw.f["publish"] if p["name"] == "wiki"][0]
        keys, hostname = f["i2p"]["keysFile"], f["onion"]["hostnameFile"]
        old_main = gw.pages["/"]["body"]
        young_main = old_main.replace("<b>Uptime:</b> 2 hours, 5 minutes, 3 seconds", "<b>Uptime:</b> 8 seconds")
        self.assertNotEqual(young_main, old_main)
        gw.pages["/"]["body"] = young_main
        del gw.files[keys]
        checks = run_status(gw)
        c = by_id(checks)["publish.wiki"]
        self.assertEqual((c.status, c.summary), (P.WAIT, "%s (I2P: no keys yet (i2pd makes them at its start)); the application answers (HTTP 200)" % SITE_ONION))
        self.assertIn("wait", c.fix)
        self.assertEqual(P.EXIT[P.verdict(checks)], 1)
        # Tor's hostname missing too, Tor still bootstrapping: still starting.
        del gw.files[hostname]
        gw.tor_reply = {"replies": [fixture("tor-control", "bootstrap-stuck-0.4.9.15.txt").strip()]}
        c = by_id(run_status(gw))["publish.wiki"]
        self.assertEqual((c.status, c.summary), (P.WAIT, "no address read (I2P: no keys yet (i2pd makes them at its start); "
                                                         "onion: no hostname yet (Tor writes it at its start)); the application answers (HTTP 200)"))
        # Tor bootstrapped without a hostname: it wrote none at its start, and will not.
        gw.tor_reply = {"replies": [fixture("tor-control", "bootstrap-done.txt").strip()]}
        c = by_id(run_status(gw))["publish.wiki"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("journalctl -b -u %s" % P.nice(gw.f["tor"]["unit"]), c.fix)
        gw.files[hostname] = SITE_ONION + "\n"
        # i2pd up for two hours without the keys: it will not make them now.
        gw.pages["/"]["body"] = old_main
        c = by_id(run_status(gw))["publish.wiki"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("i2pd has run 2 h without making them", c.summary)
        self.assertIn("journalctl -b -u %s" % P.nice(gw.f["router"]["unit"]), c.fix)
        # i2pd not running: not published, and nothing will make the keys until it runs.
        gw.pages["/"]["body"] = young_main
        gw.stop("router")
        c = by_id(run_status(gw))["publish.wiki"]
        self.assertEqual(c.status, P.FAIL)
        self.assertIn("i2pd is not running", c.summary)
        self.assertIn("fix the i2pd line above first", c.fix)
        # Its unit still starting, or running with its ports not open yet (seen in the booted gateway right after
        # boot): starting, WAIT.
        for state, sub in (("activating", "start-pre"), ("active", "running")):
            gw = FakeGateway(facts("publish"))
            del gw.files[keys]
            gw.stop("router")
            gw.units[gw.f["router"]["unit"]].update(ActiveState=state, SubState=sub)
            c = by_id(run_status(gw))["publish.wiki"]
            self.assertEqual(c.status, P.WAIT, state)
        # Both made: OK.
        gw = FakeGateway(facts("publish"))
        gw.pages["/"]["body"] = young_main
        self.assertEqual(by_id(run_status(gw))["publish.wiki"].status, P.OK)

    def test_keys_that_are_not_keys(self):
        self.assertIsNone(P.b32_of_keys(b"short"))
        self.assertIsNone(P.b32_of_keys(SITE_DEST[:385] + bytes([5, 0, 200])))


class ControlSocketStandIn:
    """Stands for Tor's control socket (an AF_UNIX stream socket in a temp dir): records every byte it receives,
    answers AUTHENTICATE with 250 OK and GETINFO with a bootstrapped Tor's reply."""

    def __init__(self, path):
        self.path = path
        self.received = b""
        self.connections = 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.srv.settimeout(5)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        reply = fixture("tor-control", "bootstrap-done.txt").strip().replace("\n", "\r\n") + "\r\n"
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                f = conn.makefile("rwb")
                for line in f:
                    self.received += line
                    word = line.split(b" ", 1)[0].strip()
                    f.write((reply if word == b"GETINFO" else "250 OK\r\n").encode())
                    f.flush()
                    if word == b"QUIT":
                        break

    def close(self):
        self.srv.close()
        self.thread.join(5)


class DaemonFiles(unittest.TestCase):
    """Root never sends a daemon what a link, a FIFO, another user's file or an oversized file in that daemon's
    directory leads to (issue 19.2): the console password (i2pd's /var/lib/i2pd) and Tor's cookie (Tor's runtime
    directory) are real files in a temp dir here, read with the program's own read_private, and what the stand-ins
    for i2pd's console and Tor's control socket receive is recorded."""

    ME = os.getuid()
    OTHER = os.getuid() + 4242
    # What a link would lead to: root's file, letters and digits only and exactly 32 bytes, so that only the link,
    # owner and type rules can keep it back.
    ROOTS = "RootOnlySecretRootOnlySecret0123"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="qig-daemon-files-")
        self.secret = self.path("etc-shadow")
        self.write(self.secret, self.ROOTS)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, path, data):
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)

    def gateway(self, owner_uid=None):
        """A healthy stand-in gateway whose daemon files are the real files of this test, i2pd's and Tor's users
        being this test's user (or another uid, to see a file of the wrong owner refused)."""
        f = copy.deepcopy(facts("default"))
        f["router"]["console"]["passwordFile"] = self.path("console.pass")
        f["tor"]["cookieFile"] = self.path("control.authcookie")
        f["tor"]["controlSocket"] = self.path("control")
        uid = self.ME if owner_uid is None else owner_uid

        class Here(FakeGateway):
            USERS = dict(FakeGateway.USERS, i2pd=(uid, uid), **{"debian-tor": (uid, uid)})
        gw = Here(f)
        gw.read_private = lambda path, o, name, limit, exact=None: P.System().read_private(path, o, name, limit, exact)
        gw.pages["/"] = {"status": 401, "headers": {}, "body": ""}
        return gw

    def bad_files(self, name):
        """(what it is, how to make it, the words of the refusal) for each thing a daemon's user could put there."""
        p = self.path(name)
        return [
            ("a link to root's file", lambda: os.symlink(self.secret, p), "is a symbolic link (not followed): not read"),
            ("a FIFO", lambda: os.mkfifo(p, 0o600), "is not a regular file: not read"),
            ("an oversized file", lambda: self.write(p, "A" * 4096), "has 4096 bytes, not 32: not read"),
            ("a short file", lambda: self.write(p, "A" * 31), "has 31 bytes, not 32: not read"),
        ]

    def test_read_private_on_real_files(self):
        ok = self.path("ok")
        self.write(ok, "x" * 32)
        self.assertEqual(P.read_private(ok, self.ME, "me", 32, 32), b"x" * 32)
        with self.assertRaises(FileNotFoundError):
            P.read_private(self.path("missing"), self.ME, "me", 32)
        link = self.path("link")
        os.symlink(self.secret, link)
        with self.assertRaisesRegex(P.UnsafeFile, "is a symbolic link"):
            P.read_private(link, self.ME, "me", 64)
        fifo = self.path("fifo")
        os.mkfifo(fifo, 0o600)
        with self.assertRaisesRegex(P.UnsafeFile, "is not a regular file"):
            P.read_private(fifo, self.ME, "me", 64)  # and it did not block waiting for a writer
        with self.assertRaisesRegex(P.UnsafeFile, r"belongs to uid %d, not to i2pd \(uid %d\)" % (self.ME, self.OTHER)):
            P.read_private(ok, self.OTHER, "i2pd", 32, 32)
        with self.assertRaisesRegex(P.UnsafeFile, "has 32 bytes, more than 16"):
            P.read_private(ok, self.ME, "me", 16)
        with self.assertRaisesRegex(P.UnsafeFile, "has 32 bytes, not 33"):
            P.read_private(ok, self.ME, "me", 64, 33)

    def test_console_password_that_is_not_i2pds_file_is_never_sent(self):
        for what, make, words in self.bad_files("console.pass") + [
                ("root's file (another owner)", None, "belongs to uid %d, not to i2pd (uid %d): not read" % (self.ME, self.OTHER))]:
            with self.subTest(what):
                gw = self.gateway(self.OTHER if make is None else None)
                if make is None:
                    self.write(gw.f["router"]["console"]["passwordFile"], self.ROOTS)
                else:
                    make()
                c = by_id(run_status(gw))["router.network"]
                self.assertEqual(c.status, P.FAIL)
                self.assertIn(words, c.summary)
                self.assertIn("sudo rm %s" % gw.f["router"]["console"]["passwordFile"], c.fix)
                # Not a byte of it reached the console: it was not even asked.
                self.assertEqual(gw.console_requests, [])
                os.unlink(gw.f["router"]["console"]["passwordFile"])
        # A password i2pd-console-auth made (i2pd's, 32 letters and digits) is sent, as Basic auth for user i2pd.
        gw = self.gateway()
        self.write(gw.f["router"]["console"]["passwordFile"], "p" * 32)
        gw.pages["/"] = {"status": 200, "headers": {}, "body": fixture("i2pd-console", "main-2.56.0-integrated.html")}
        self.assertEqual(by_id(run_status(gw))["router.network"].status, P.OK)
        basic = binascii.b2a_base64(b"i2pd:" + b"p" * 32, newline=False).decode()
        self.assertIn("Authorization: Basic %s\r\n" % basic, gw.console_requests[0])
        # 32 bytes but not letters and digits: not a password this gateway made, not sent.
        gw = self.gateway()
        self.write(gw.f["router"]["console"]["passwordFile"], "root:$y$j9T$abcdefghijklmnopqr:0")
        c = by_id(run_status(gw))["router.network"]
        self.assertEqual((c.status, gw.console_requests), (P.FAIL, []))
        self.assertIn("is not a password i2pd-console-auth made", c.summary)

    def tor_run(self, gw):
        """The status run with the program's own Tor control client against the stand-in control socket."""
        stand_in = ControlSocketStandIn(gw.f["tor"]["controlSocket"])
        gw.tor_control = lambda path, cookie, commands, timeout=3.0: P.System().tor_control(path, cookie, commands, timeout)
        try:
            c = by_id(run_status(gw))["tor.bootstrap"]
        finally:
            stand_in.close()
        return c, stand_in

    def test_tor_cookie_that_is_not_tors_file_is_never_sent(self):
        secret = bytes(range(200, 232))  # root's 32 bytes, what the link leads to
        self.write(self.secret, secret)
        for what, make, words in self.bad_files("control.authcookie") + [
                ("root's file (another owner)", None, "belongs to uid %d, not to debian-tor (uid %d): not read" % (self.ME, self.OTHER))]:
            with self.subTest(what):
                gw = self.gateway(self.OTHER if make is None else None)
                if make is None:
                    self.write(gw.f["tor"]["cookieFile"], secret)
                else:
                    make()
                c, stand_in = self.tor_run(gw)
                self.assertEqual(c.status, P.FAIL)
                self.assertIn(words, c.summary)
                self.assertIn("restart qubes-i2p-gateway-tor", c.fix)
                self.assertEqual((stand_in.connections, stand_in.received), (0, b""))
                self.assertNotIn(binascii.hexlify(secret).upper(), stand_in.received.upper())
                os.unlink(gw.f["tor"]["cookieFile"])
                os.unlink(gw.f["tor"]["controlSocket"])
        # Tor's own cookie (Tor's user's, 32 bytes) is sent, hex, and Tor's answer read.
        gw = self.gateway()
        cookie = bytes(range(32))
        self.write(gw.f["tor"]["cookieFile"], cookie)
        c, stand_in = self.tor_run(gw)
        self.assertEqual(c.status, P.OK, c.summary)
        self.assertTrue(stand_in.received.startswith(b"AUTHENTICATE " + binascii.hexlify(cookie) + b"\r\n"), stand_in.received)


class JsonAlways(unittest.TestCase):
    """`status --json` prints one JSON document in every outcome (issue 20.5): a missing or bad data file, a command
    line it refuses, an internal error. Exit 2 and the error in the document; without --json, one line on stderr."""

    def main(self, argv, system=None):
        out, err = io.StringIO(), io.StringIO()
        old, sys.stderr = sys.stderr, err
        try:
            code = P.main(argv, system or FakeGateway(facts("default")), out)
        finally:
            sys.stderr = old
        return code, out.getvalue(), err.getvalue()

    def error_document(self, argv, words, system=None):
        code, out, err = self.main(argv, system)
        self.assertEqual(code, 2)
        doc = json.loads(out)
        self.assertEqual((doc["verdict"], doc["exit"], doc["checks"], doc["root"]), ("fail", 2, [], True))
        self.assertIn(words, doc["error"])
        self.assertIn(words, err)
        return doc

    def test_missing_data_file(self):
        d = tempfile.mkdtemp(prefix="qig-json-")
        try:
            missing = os.path.join(d, "status.json")
            self.error_document(["status", "--json", "--facts", missing], "cannot read the package's data file: [Errno 2] No such file or directory")
            # Without --json: nothing on stdout, one line on stderr, exit 2 (as before).
            code, out, err = self.main(["status", "--facts", missing])
            self.assertEqual((code, out), (2, ""))
            self.assertIn("cannot read the package's data file", err)
            for text, words in (('{"format": 99}', "has format 99; this program reads format 1"),
                                ("[1, 2]", "is not a JSON object"), ("{not json", "Expecting property name")):
                with open(missing, "w") as f:
                    f.write(text)
                with self.subTest(text):
                    self.error_document(["status", "--facts", missing, "--json"], words)
        finally:
            import shutil
            shutil.rmtree(d)

    def test_refused_command_lines(self):
        self.error_document(["status", "--json", "--bogus"], "unrecognized arguments: --bogus")
        self.error_document(["status", "--js", "--color", "sometimes"], "invalid choice: 'sometimes'")
        self.error_document(["--json"], "unrecognized arguments: --json")
        self.error_document(["stauts", "--json"], "invalid choice: 'stauts'")
        code, out, err = self.main(["status", "--bogus"])
        self.assertEqual((code, out), (2, ""))
        self.assertIn("unrecognized arguments: --bogus", err)

    def test_internal_error_is_still_json(self):
        d = tempfile.mkdtemp(prefix="qig-json-")
        try:
            broken = os.path.join(d, "status.json")
            f = facts("default")
            del f["tinyproxy"]
            with open(broken, "w") as fh:
                json.dump(f, fh)
            doc = self.error_document(["status", "--json", "--facts", broken], "internal error: KeyError: 'tinyproxy'",
                                      FakeGateway(facts("default")))
            self.assertEqual(doc["gateway"], f["gateway"])
        finally:
            import shutil
            shutil.rmtree(d)

    def test_not_root_is_said(self):
        gw = FakeGateway(facts("default"))
        gw.uid = 1000
        code, out, _ = self.main(["status", "--json", "--facts", "/nonexistent/status.json"], gw)
        self.assertEqual((code, json.loads(out)["root"]), (2, False))


if __name__ == "__main__":
    unittest.main()

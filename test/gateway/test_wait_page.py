"""Unit tests of gateway/i2p-wait-page (the page a client sees while the I2P router is not ready): its parsers against
captures of i2pd 2.56's console (test/fixtures/i2pd-console/), its verdicts, and the relay itself over real sockets
on loopback against a stand-in for i2pd's HTTP proxy and console.

Run by test/gateway/programs.test.ts (`python3 -m unittest`, Debian 13's python3). The program runs for real, in
front of a real i2pd on the lab's private I2P network, in test/net/privnet.test.ts.
"""
import asyncio
import base64
import importlib.machinery
import importlib.util
import os
import socket
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "i2pd-console")


def load_program():
    path = os.path.join(ROOT, "gateway", "i2p-wait-page")
    loader = importlib.machinery.SourceFileLoader("qig_wait_page", path)
    spec = importlib.util.spec_from_loader("qig_wait_page", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


W = load_program()


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


# i2pd 2.56's own error answers (HTTPProxy.cpp SendProxyError: 500, these headers, its page around the heading).
def i2pd_error(heading):
    body = ("<html>\r\n<head><title>I2Pd HTTP proxy</title></head><body>%s\r\n<p>...</p>\r\n</body>\r\n</html>\r\n" % heading).encode()
    return (b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: %d\r\n"
            b"Content-Type: text/html; charset=UTF-8\r\nDate: Sat, 05 Dec 2026 19:00:00 GMT\r\n\r\n" % len(body)) + body


NOT_FOUND = i2pd_error("<h1>Proxy error: Host not found</h1>")
HOST_DOWN = i2pd_error("<h1>Proxy error: Host is down</h1>")
NOT_READY = {"routers": 1, "tunnels": 0, "names": 0, "network": "Unknown", "uptime": 40}
READY = {"routers": 2517, "tunnels": 3, "names": 0, "network": "Firewalled", "uptime": 7200}


class Parsers(unittest.TestCase):
    def test_integrated_console(self):
        main = W.parse_main(fixture("main-2.56.0-integrated.html"))
        self.assertEqual(main["routers"], 2517)
        self.assertEqual(main["network"], "Firewalled")
        self.assertGreater(main["uptime"], 0)
        self.assertGreater(W.parse_tunnels(fixture("tunnels-2.56.0-integrated.html")), 0)

    def test_console_without_network(self):
        self.assertEqual(W.parse_main(fixture("main-2.56.0-no-network.html"))["routers"], 1)
        self.assertEqual(W.parse_tunnels(fixture("tunnels-2.56.0-no-network.html")), 0)
        self.assertIsNone(W.parse_tunnels("<html>login</html>"))


class Verdicts(unittest.TestCase):
    def test_router_silent(self):
        self.assertEqual(W.verdict(None, READY), "starting")

    def test_not_integrated(self):
        self.assertEqual(W.verdict(HOST_DOWN, NOT_READY), "integrating")
        self.assertEqual(W.verdict(NOT_FOUND, NOT_READY), "integrating")

    def test_names_not_fetched(self):
        self.assertEqual(W.verdict(NOT_FOUND, READY), "names")

    def test_router_errors_kept_once_ready(self):
        self.assertIsNone(W.verdict(HOST_DOWN, READY))
        self.assertIsNone(W.verdict(NOT_FOUND, dict(READY, names=120)))

    def test_other_answers_kept(self):
        self.assertIsNone(W.verdict(b"HTTP/1.1 200 OK\r\n\r\n<h1>Proxy error: Host is down</h1>", NOT_READY))
        self.assertIsNone(W.verdict(b"HTTP/1.1 500 Internal Server Error\r\n\r\nthe site's own error", NOT_READY))
        self.assertIsNone(W.verdict(b"HTTP/1.1 404 Not Found\r\n\r\n", NOT_READY))

    def test_page(self):
        page = W.render_page("integrating", dict(NOT_READY, network="<script>x</script>")).decode()
        head, _, body = page.partition("\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 503 "))
        self.assertIn("Content-Length: %d\r\n" % len(body.encode()), head + "\r\n")
        self.assertIn("Cache-Control: no-store", head)
        self.assertIn(W.PAGE_MARK, body)
        self.assertIn("<tr><th>Routers known</th><td>1</td></tr>", body)
        self.assertIn("&lt;script&gt;", body)
        # No script, no external resource: nothing the browser would fetch or run.
        self.assertNotIn("<script", body)
        self.assertNotRegex(body, r"(?i)(src|href)=|url\(|@import|https?://")


class StandIn:
    """i2pd's HTTP proxy (answers `answer` to each request, recording it) and console (Basic auth, the captures)."""

    def __init__(self, answer, console_main, console_tunnels, password):
        self.answer = answer
        self.requests = []
        self.console_hits = 0
        self.proxy = socket.socket()
        self.proxy.bind(("127.0.0.1", 0))
        self.proxy.listen(16)
        threading.Thread(target=self.serve_proxy, daemon=True).start()
        outer = self

        class Console(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.console_hits += 1
                want = "Basic " + base64.b64encode(("i2pd:%s" % password).encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = (console_tunnels if "page=tunnels" in self.path else console_main).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.console = ThreadingHTTPServer(("127.0.0.1", 0), Console)
        threading.Thread(target=self.console.serve_forever, daemon=True).start()

    def serve_proxy(self):
        while True:
            try:
                c, _ = self.proxy.accept()
            except OSError:
                return
            with c:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                c.sendall(self.answer)

    def close(self):
        self.proxy.close()
        self.console.shutdown()
        self.console.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


class Relay(unittest.TestCase):
    """The relay as it runs, over real sockets: bytes passed both ways, the page only while the router is not ready."""

    def run_relay(self, answer, main, tunnels, upstream_down=False, names=0):
        tmp = tempfile.mkdtemp()
        with open(os.path.join(tmp, "pass"), "w") as f:
            f.write("secretsecret")
        os.mkdir(os.path.join(tmp, "addressbook"))
        if names:
            with open(os.path.join(tmp, "addressbook", "addresses.csv"), "w") as f:
                f.write("".join("site%d.i2p,xyz\n" % i for i in range(names)))
        stand = StandIn(answer, main, tunnels, "secretsecret")
        self.addCleanup(stand.close)
        upstream = free_port() if upstream_down else stand.proxy.getsockname()[1]
        port = free_port()
        args = ["--listen", "127.0.0.1:%d" % port, "--upstream", "127.0.0.1:%d" % upstream,
                "--console", "127.0.0.1:%d" % stand.console.server_address[1], "--console-user", "i2pd",
                "--password-file", os.path.join(tmp, "pass"), "--addressbook", os.path.join(tmp, "addressbook")]
        loop = asyncio.new_event_loop()
        parsed = None

        def runner():
            asyncio.set_event_loop(loop)
            p = W.argparse.ArgumentParser()
            for a in ("--listen", "--upstream", "--console"):
                p.add_argument(a, type=W.host_port)
            for a in ("--console-user", "--password-file", "--addressbook"):
                p.add_argument(a)
            p.add_argument("--max-connections", type=int, default=8)
            nonlocal parsed
            parsed = p.parse_args(args)
            try:
                loop.run_until_complete(W.main_async(parsed))
            except RuntimeError:
                pass

        t = threading.Thread(target=runner, daemon=True)
        t.start()
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                threading.Event().wait(0.05)
        self.addCleanup(lambda: loop.call_soon_threadsafe(loop.stop))
        return port, stand

    REQUEST = b"GET http://site.i2p/a?b=1 HTTP/1.1\r\nHost: site.i2p\r\nX-Anything: \xff\x00 as sent\r\n\r\n"

    def test_page_while_not_integrated(self):
        port, stand = self.run_relay(HOST_DOWN, fixture("main-2.56.0-no-network.html"), fixture("tunnels-2.56.0-no-network.html"))
        got = ask(port, self.REQUEST)
        self.assertTrue(got.startswith(b"HTTP/1.1 503 "), got[:200])
        self.assertIn(W.PAGE_MARK.encode(), got)
        self.assertIn(b"<tr><th>Routers known</th><td>1</td></tr>", got)
        self.assertIn(b"<tr><th>Tunnels through other routers</th><td>0</td></tr>", got)
        # The request reached the router unchanged, byte for byte.
        self.assertEqual([r for r in stand.requests if r], [self.REQUEST])  # (the empty one: the start-up probe)

    def test_router_error_kept_once_integrated(self):
        port, stand = self.run_relay(HOST_DOWN, fixture("main-2.56.0-integrated.html"), fixture("tunnels-2.56.0-integrated.html"))
        self.assertEqual(ask(port, self.REQUEST), HOST_DOWN)

    def test_unknown_name_before_any_subscription(self):
        port, _ = self.run_relay(NOT_FOUND, fixture("main-2.56.0-integrated.html"), fixture("tunnels-2.56.0-integrated.html"))
        got = ask(port, self.REQUEST)
        self.assertIn(b"does not know this name yet", got)
        self.assertIn(b"<tr><th>Names in the address book</th><td>0</td></tr>", got)

    def test_unknown_name_after_subscriptions_kept(self):
        port, _ = self.run_relay(NOT_FOUND, fixture("main-2.56.0-integrated.html"), fixture("tunnels-2.56.0-integrated.html"), names=3)
        self.assertEqual(ask(port, self.REQUEST), NOT_FOUND)

    def test_site_answers_pass_unchanged_without_asking_the_console(self):
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + bytes(range(256)) * 300
        port, stand = self.run_relay(answer, fixture("main-2.56.0-no-network.html"), fixture("tunnels-2.56.0-no-network.html"))
        self.assertEqual(ask(port, self.REQUEST), answer)
        self.assertEqual(stand.console_hits, 0)

    def test_router_silent(self):
        port, _ = self.run_relay(b"", fixture("main-2.56.0-no-network.html"), fixture("tunnels-2.56.0-no-network.html"), upstream_down=True)
        got = ask(port, self.REQUEST)
        self.assertTrue(got.startswith(b"HTTP/1.1 503 "))
        self.assertIn(b"The I2P router is starting", got)


# What gateway/i2pd-client-proxies writes for a client (its tunnel_text), the relay's only source of a client's port.
def client_tunnel(addr, port):
    return ("# qubes-i2p-gateway: the I2P HTTP proxy of client qube %s, written by i2pd-client-proxies while its\n"
            "# interface exists. Its own destination: the keys below, in i2pd's state directory.\n"
            "[qubes-i2p-gateway-client-%s]\ntype = httpproxy\naddress = 127.0.0.1\nport = %d\n"
            "keys = qubes-i2p-gateway-client-%s.dat\noutproxy =\naddresshelper = false\n" % (addr, addr, port, addr))


class PerClient(unittest.TestCase):
    """Per-client destinations: the relay picks the peer's own proxy from its tunnel file, and refuses anyone else."""

    PREFIX = "60-qubes-i2p-gateway-client-"
    PORTS = (31000, 32023)

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        for addr, port in (("10.137.0.10", 31000), ("10.137.0.11", 31001)):
            with open(os.path.join(self.dir, "%s%s.conf" % (self.PREFIX, addr)), "w") as f:
                f.write(client_tunnel(addr, port))

    def port(self, peer):
        return W.client_port(self.dir, self.PREFIX, self.PORTS, peer)

    def write(self, addr, text):
        with open(os.path.join(self.dir, "%s%s.conf" % (self.PREFIX, addr)), "w") as f:
            f.write(text)

    def test_each_client_its_own_port(self):
        self.assertEqual(self.port("10.137.0.10"), 31000)
        self.assertEqual(self.port("10.137.0.11"), 31001)

    def test_no_file_no_port(self):
        self.assertIsNone(self.port("10.137.0.12"))
        self.assertIsNone(self.port("127.0.0.1"))
        self.assertIsNone(self.port("::1"))
        self.assertIsNone(self.port("../10.137.0.10"))
        self.assertIsNone(self.port(None))

    def test_unexpected_files_refused(self):
        # A file naming another client's section, a port outside the range, a proxy not on loopback, a link.
        self.write("10.137.0.20", client_tunnel("10.137.0.11", 31001))
        self.write("10.137.0.21", client_tunnel("10.137.0.21", 4444))
        self.write("10.137.0.22", client_tunnel("10.137.0.22", 31005).replace("address = 127.0.0.1", "address = 0.0.0.0"))
        self.write("10.137.0.23", client_tunnel("10.137.0.23", 31006) + "port = 31001\n")
        os.symlink(os.path.join(self.dir, self.PREFIX + "10.137.0.10.conf"), os.path.join(self.dir, self.PREFIX + "10.137.0.24.conf"))
        for peer in ("10.137.0.20", "10.137.0.21", "10.137.0.22", "10.137.0.23", "10.137.0.24"):
            self.assertIsNone(self.port(peer), peer)

    def test_upstream_by_peer(self):
        relay = W.Relay(("127.0.0.1", 4444), None, 8, (self.dir, self.PREFIX, self.PORTS))

        class Peer:
            def __init__(self, addr):
                self.addr = addr

            def get_extra_info(self, key):
                return (self.addr, 40000) if key == "peername" else None

        self.assertEqual(relay.upstream_for(Peer("10.137.0.10")), ("127.0.0.1", 31000))
        self.assertEqual(relay.upstream_for(Peer("10.137.0.11")), ("127.0.0.1", 31001))
        self.assertIsNone(relay.upstream_for(Peer("10.137.0.12")))
        # tinyproxy (loopback) still reaches the shared proxy.
        self.assertEqual(relay.upstream_for(Peer("127.0.0.1")), ("127.0.0.1", 4444))
        shared = W.Relay(("127.0.0.1", 4444), None, 8)
        self.assertEqual(shared.upstream_for(Peer("10.137.0.10")), ("127.0.0.1", 4444))

    def test_refused_peer_gets_no_answer(self):
        relay = W.Relay(("127.0.0.1", 4444), None, 8, (self.dir, self.PREFIX, self.PORTS))
        closed = []

        class Writer:
            def get_extra_info(self, key):
                return ("10.137.0.99", 40000) if key == "peername" else None

            def write(self, data):
                raise AssertionError("answered a peer without a proxy: %r" % data[:100])

            def close(self):
                closed.append(True)

        asyncio.new_event_loop().run_until_complete(relay.handle(None, Writer()))
        self.assertEqual(closed, [True])


if __name__ == "__main__":
    unittest.main()

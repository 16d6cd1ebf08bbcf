"""Unit tests of gateway/i2p-wait-page (the page a client sees while the I2P router is not ready): its parsers against
captures of i2pd 2.56's console (test/fixtures/i2pd-console/), its verdicts, the relay itself and a client's front
(--front: strict parsing, the request i2pd gets, refusals) over real sockets on loopback against a stand-in for
i2pd's HTTP proxy and console, and the facts file between them.

Run by test/gateway/programs.test.ts (`python3 -m unittest`, Debian 13's python3). The program runs for real, in
front of a real i2pd on the lab's private I2P network, in test/net/privnet.test.ts.
"""
import asyncio
import base64
import json
import importlib.machinery
import importlib.util
import os
import re
import socket
import sys
import tempfile
import threading
import time
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
                m = re.search(rb"(?im)^content-length: (\d+)\r$", data.partition(b"\r\n\r\n")[0])
                want = len(data.partition(b"\r\n\r\n")[0]) + 4 + (int(m.group(1)) if m else 0)
                while m and len(data) < want:
                    chunk = c.recv(65536)
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


def serve(test, args, port):
    """W.main_async(args) in a thread of its own until `port` accepts (the program as it runs); stopped at cleanup."""
    loop = asyncio.new_event_loop()

    def runner():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(W.main_async(args))
        except RuntimeError:
            pass

    threading.Thread(target=runner, daemon=True).start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            threading.Event().wait(0.05)
    test.addCleanup(lambda: loop.call_soon_threadsafe(loop.stop))


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
        p = W.argparse.ArgumentParser()
        for a in ("--listen", "--upstream", "--console"):
            p.add_argument(a, type=W.host_port)
        for a in ("--console-user", "--password-file", "--addressbook"):
            p.add_argument(a)
        p.add_argument("--max-connections", type=int, default=8)
        serve(self, p.parse_args(args), port)
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


class Front(unittest.TestCase):
    """--front, one client qube's HTTP front: its strict parsing, what the client's own proxy gets, its refusals, and
    the page from the facts file. Over real sockets on loopback, against a stand-in for the client's proxy in i2pd."""

    def run_front(self, answer, facts=None, facts_raw=None):
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "facts.json")
        if facts is not None:
            W.write_facts(path, facts)
        if facts_raw is not None:
            with open(path, "wb") as f:
                f.write(facts_raw)
        stand = StandIn(answer, "", "", "unused")
        self.addCleanup(stand.close)
        port = free_port()
        args = W.argparse.Namespace(front=True, listen=("127.0.0.1", port), upstream=stand.proxy.getsockname(),
                                    facts=path, facts_out=None, max_connections=8)
        serve(self, args, port)
        return port, stand

    OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def passed(self, stand):
        return [r for r in stand.requests if r]  # (the empty one: the start-up probe)

    def test_origin_form_rewritten_for_the_proxy(self):
        port, stand = self.run_front(self.OK)
        got = ask(port, b"GET /a?b=1 HTTP/1.1\r\nHost: Site.I2P\r\nUser-Agent: x\r\nConnection: keep-alive\r\n"
                        b"Keep-Alive: 5\r\nX-I2P-DestB32: forged.b32.i2p\r\nCookie: caf\xc3\xa9=1\r\nAccept:   */*  \r\n\r\n")
        self.assertEqual(got, self.OK)
        self.assertEqual(self.passed(stand), [b"GET /a?b=1 HTTP/1.1\r\nHost: site.i2p\r\nUser-Agent: x\r\n"
                                              b"Cookie: caf\xc3\xa9=1\r\nAccept: */*\r\nConnection: close\r\n\r\n"])

    def test_absolute_form_and_port(self):
        port, stand = self.run_front(self.OK)
        ask(port, b"GET http://site.i2p:8080/x HTTP/1.0\r\n\r\n")
        ask(port, b"HEAD http://abc.b32.i2p HTTP/1.1\r\nHost: abc.b32.i2p\r\n\r\n")
        self.assertEqual(self.passed(stand), [b"GET /x HTTP/1.1\r\nHost: site.i2p:8080\r\nConnection: close\r\n\r\n",
                                              b"HEAD / HTTP/1.1\r\nHost: abc.b32.i2p\r\nConnection: close\r\n\r\n"])

    def test_body_exactly_its_length_and_one_request_a_connection(self):
        port, stand = self.run_front(self.OK)
        body = bytes(range(256)) * 40
        second = b"GET /smuggled HTTP/1.1\r\nHost: other.i2p\r\n\r\n"
        got = ask(port, b"POST /form HTTP/1.1\r\nHost: site.i2p\r\nContent-Length: %d\r\n\r\n" % len(body) + body + second)
        self.assertEqual(got, self.OK)
        self.assertEqual(self.passed(stand), [b"POST /form HTTP/1.1\r\nHost: site.i2p\r\nContent-Length: %d\r\n"
                                              b"Connection: close\r\n\r\n" % len(body) + body])

    BAD = [
        (b"GET / HTTP/1.1\nHost: site.i2p\r\n\r\n", 400, b"CRLF"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\nX: a\rb\r\n\r\n", 400, b"CRLF"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, b"Content-Length"),
        (b"POST / HTTP/1.1\r\nHost: site.i2p\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, b"Transfer-Encoding"),
        (b"POST / HTTP/1.1\r\nHost: site.i2p\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 501, b"Transfer-Encoding"),
        (b"POST / HTTP/1.1\r\nHost: site.i2p\r\n\r\n", 411, b"Content-Length"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\nContent-Length: -1\r\n\r\n", 400, b"Content-Length"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\nX-A: 1\r\n continued\r\n\r\n", 400, b"folded"),
        (b"GET / HTTP/1.1\r\nHost : site.i2p\r\n\r\n", 400, b"NAME: VALUE"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\nX-A: \x00\r\n\r\n", 400, b"control"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\nHost: other.i2p\r\n\r\n", 400, b"Host"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, b"no Host"),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, b".i2p name"),
        (b"GET / HTTP/1.1\r\nHost: 10.100.100.100\r\n\r\n", 400, b".i2p name"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p:99999\r\n\r\n", 400, b".i2p name"),
        (b"GET http://a.i2p/ HTTP/1.1\r\nHost: b.i2p\r\n\r\n", 400, b"different hosts"),
        (b"GET https://site.i2p/ HTTP/1.1\r\nHost: site.i2p\r\n\r\n", 400, b"request target"),
        (b"GET /a b HTTP/1.1\r\nHost: site.i2p\r\n\r\n", 400, b"request line"),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: site.i2p\r\n\r\n", 400, b"request target"),
        (b"GET  / HTTP/1.1\r\nHost: site.i2p\r\n\r\n", 400, b"request line"),
        (b"GET /\r\n\r\n", 400, b"request line"),
        (b"GET / HTTP/2.0\r\nHost: site.i2p\r\n\r\n", 505, b"HTTP/1.0"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, b"HTTP/1.0"),
        (b"CONNECT site.i2p:443 HTTP/1.1\r\nHost: site.i2p:443\r\n\r\n", 405, b"CONNECT"),
        (b"TRACE / HTTP/1.1\r\nHost: site.i2p\r\n\r\n", 501, b"TRACE"),
        (b"G\xc3\x89T / HTTP/1.1\r\nHost: site.i2p\r\n\r\n", 400, b"token"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\n" + b"X-A: 1\r\n" * 100 + b"\r\n", 431, b"header lines"),
        (b"GET / HTTP/1.1\r\nHost: site.i2p\r\nX-A: " + b"a" * 40000 + b"\r\n\r\n", 431, b"head"),
    ]

    def test_refusals_reach_no_proxy(self):
        port, stand = self.run_front(self.OK)
        for request, status, why in self.BAD:
            got = ask(port, request)
            self.assertTrue(got.startswith(b"HTTP/1.1 %d " % status), (request[:80], got[:300]))
            self.assertIn(why, got.partition(b"\r\n\r\n")[2], request[:80])
            self.assertIn(b"Connection: close\r\n", got)
        self.assertEqual(self.passed(stand), [])

    def test_page_from_the_facts_file(self):
        port, _ = self.run_front(HOST_DOWN, facts=NOT_READY)
        got = ask(port, b"GET / HTTP/1.1\r\nHost: site.i2p\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 503 "), got[:200])
        self.assertIn(b"<tr><th>Routers known</th><td>1</td></tr>", got)
        port, _ = self.run_front(HOST_DOWN, facts=READY)
        self.assertEqual(ask(port, b"GET / HTTP/1.1\r\nHost: site.i2p\r\n\r\n"), HOST_DOWN)

    def test_page_without_figures(self):
        port, _ = self.run_front(NOT_FOUND)
        got = ask(port, b"GET / HTTP/1.1\r\nHost: site.i2p\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 503 "), got[:200])
        self.assertIn(b"no answer (no figures yet)", got)


class Facts(unittest.TestCase):
    """The facts file between the i2pd user's instance (write_facts) and the fronts (read_facts): the reader takes
    only known fields of the expected types from a fresh file, whatever else the file holds."""

    def path(self):
        return os.path.join(tempfile.mkdtemp(), "facts.json")

    def test_round_trip_world_readable(self):
        p = self.path()
        old = os.umask(0o077)
        try:
            W.write_facts(p, READY)
        finally:
            os.umask(old)
        self.assertEqual(os.stat(p).st_mode & 0o777, 0o644)
        self.assertEqual(W.read_facts(p), READY)

    def test_hostile_contents_ignored(self):
        p = self.path()
        cases = [
            (b"", {"console": "figures unreadable"}),
            (b"[1, 2]", {"console": "figures unreadable"}),
            (b"{" + b" " * 5000 + b"}", {"console": "figures unreadable"}),
            (json_bytes({"routers": 3}), {"console": "figures out of date"}),
            (json_bytes({"at": 1.0, "routers": 3}), {"console": "figures out of date"}),
            (json_bytes({"at": time.time() + 3600, "routers": 3}), {"console": "figures out of date"}),
            (json_bytes({"at": time.time(), "routers": "3", "tunnels": True, "names": -1, "uptime": 2 ** 50,
                         "network": "<b>" * 50, "console": ["x"], "other": 1}), {}),
            (json_bytes({"at": time.time(), "routers": 7, "network": "OK <script>"}), {"routers": 7, "network": "OK <script>"}),
        ]
        for raw, want in cases:
            with open(p, "wb") as f:
                f.write(raw)
            self.assertEqual(W.read_facts(p), want, raw[:80])

    def test_link_and_missing_refused(self):
        p = self.path()
        self.assertEqual(W.read_facts(p), {"console": "no figures yet"})
        target = self.path()
        W.write_facts(target, READY)
        os.symlink(target, p)
        self.assertEqual(W.read_facts(p), {"console": "no figures yet"})


def json_bytes(obj):
    return json.dumps(obj).encode()


class Arguments(unittest.TestCase):
    def test_front_takes_no_console(self):
        for argv in (["--front", "--listen", "127.0.0.4:31000", "--upstream", "127.0.0.1:31000"],
                     ["--front", "--listen", "127.0.0.4:31000", "--upstream", "127.0.0.1:31000", "--facts", "/f",
                      "--console", "127.0.0.1:7070"],
                     ["--listen", "127.0.0.1:4446", "--upstream", "127.0.0.1:4444", "--facts", "/f"]):
            with self.assertRaises(SystemExit) as e, open(os.devnull, "w") as null:
                old, sys.stderr = sys.stderr, null
                try:
                    W.main(argv)
                finally:
                    sys.stderr = old
            self.assertEqual(e.exception.code, 2, argv)


if __name__ == "__main__":
    unittest.main()

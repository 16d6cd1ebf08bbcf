"""Unit tests of gateway/i2pd-client-proxies (each client qube its own i2pd HTTP proxy): its parsers against the
shapes Debian 13's nft 1.1.3 prints (`nft -j list set` / `list map`, as captured in the lab), the port plan and the
nft commands it sends. Run by test/gateway/programs.test.ts (`python3 -m unittest`); the program runs for real, with
the real i2pd on the lab's private I2P network, in test/net/client-destinations.test.ts.
"""
import importlib.machinery
import importlib.util
import ipaddress
import os
import sys
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load_program():
    path = os.path.join(ROOT, "gateway", "i2pd-client-proxies")
    loader = importlib.machinery.SourceFileLoader("qig_client_proxies", path)
    spec = importlib.util.spec_from_loader("qig_client_proxies", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


P = load_program()
CONF = {
    "table": "qubes-i2p-gateway", "map": "client-proxy", "pairs": "client-proxy-pairs", "qubesTable": "qubes",
    "qubesSet": "allowed", "clientRanges": ["10.137.0.0/16", "10.138.0.0/16"], "firstPort": 31000, "ports": 4,
    "tunnelsDir": "/nonexistent", "filePrefix": "60-qubes-i2p-gateway-client-", "keysPrefix": "qubes-i2p-gateway-client-",
    "routerUnit": "i2pd.service", "routerProxyPort": 4444, "interval": 1,
}
CONF["networks"] = [ipaddress.IPv4Network(r) for r in CONF["clientRanges"]]

# `nft -j list set ip qubes allowed` (nft 1.1.3), two clients and an address outside the client ranges.
ALLOWED = ('{"nftables": [{"metainfo": {"version": "1.1.3", "release_name": "Commodore Bullmoose #4", "json_schema_version": 1}}, '
           '{"set": {"family": "ip", "name": "allowed", "table": "qubes", "type": ["ifname", "ipv4_addr"], "handle": 2, '
           '"elem": [{"concat": ["vif3.0", "10.137.0.10"]}, {"concat": ["vif5.0", "10.137.0.12"]}, {"concat": ["vif9.0", "192.168.1.5"]}]}}]}')
EMPTY_SET = ('{"nftables": [{"metainfo": {"version": "1.1.3", "release_name": "Commodore Bullmoose #4", "json_schema_version": 1}}, '
             '{"set": {"family": "ip", "name": "allowed", "table": "qubes", "type": ["ifname", "ipv4_addr"], "handle": 2}}]}')
# `nft -j list map inet qubes-i2p-gateway client-proxy` (nft 1.1.3).
MAP = ('{"nftables": [{"metainfo": {"version": "1.1.3", "release_name": "Commodore Bullmoose #4", "json_schema_version": 1}}, '
       '{"map": {"family": "inet", "name": "client-proxy", "table": "t", "type": "ipv4_addr", "handle": 3, '
       '"map": ["ipv4_addr", "inet_service"], "elem": [["10.137.0.10", {"concat": ["127.0.0.1", 31000]}]]}}]}')


class Parsers(unittest.TestCase):
    def test_client_addresses_in_the_ranges_only(self):
        self.assertEqual(P.client_addresses(ALLOWED, CONF["networks"]), ["10.137.0.10", "10.137.0.12"])

    def test_no_clients(self):
        self.assertEqual(P.client_addresses(EMPTY_SET, CONF["networks"]), [])

    def test_map_elements(self):
        self.assertEqual(P.map_elements(MAP), {"10.137.0.10": 31000})

    def test_tunnel_file_round_trip(self):
        text = P.tunnel_text(CONF, "10.137.0.12", 31002)
        self.assertIn("type = httpproxy\n", text)
        self.assertIn("keys = qubes-i2p-gateway-client-10.137.0.12.dat\n", text)
        self.assertIn("addresshelper = false\n", text)
        self.assertIn("outproxy =\n", text)
        self.assertIn("address = 127.0.0.1\n", text)
        self.assertEqual(P.parse_tunnel(CONF, "60-qubes-i2p-gateway-client-10.137.0.12.conf", text), ("10.137.0.12", 31002))

    def test_a_file_it_did_not_write_is_not_taken(self):
        text = P.tunnel_text(CONF, "10.137.0.12", 31002)
        self.assertIsNone(P.parse_tunnel(CONF, "60-qubes-i2p-gateway-client-10.137.0.13.conf", text))  # name and content disagree
        self.assertIsNone(P.parse_tunnel(CONF, "60-qubes-i2p-gateway-client-10.137.0.12.conf", text + "outproxy = http://x.i2p\n"))
        self.assertIsNone(P.parse_tunnel(CONF, "60-qubes-i2p-gateway-client-../etc.conf", text))
        self.assertIsNone(P.parse_tunnel(CONF, "60-qubes-i2p-gateway-client-10.137.0.12.conf", P.tunnel_text(CONF, "10.137.0.12", 4444)))


class Ready(unittest.TestCase):
    # /proc/net/tcp of a gateway whose i2pd listens on 127.0.0.1:4444 and has a connection from 127.0.0.1:31000.
    TCP = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
           "   0: 0100007F:115C 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 1 1 0 100 0 0 10 0\n"
           "   1: 0100007F:7918 0100007F:115C 01 00000000:00000000 00:00000000 00000000   104        0 2 1 0 20 4 30 10 -1\n")

    def test_listening_proxy(self):
        self.assertTrue(P.listens(self.TCP, "127.0.0.1", 4444))

    def test_a_connection_is_not_a_listener(self):
        self.assertFalse(P.listens(self.TCP, "127.0.0.1", 31000))
        self.assertFalse(P.listens(self.TCP, "0.0.0.0", 4444))


class Plan(unittest.TestCase):
    def test_new_clients_get_the_lowest_free_ports_in_address_order(self):
        self.assertEqual(P.plan({}, ["10.137.0.10", "10.137.0.12"], 31000, 4), ({"10.137.0.10": 31000, "10.137.0.12": 31001}, []))

    def test_a_client_keeps_its_port_and_a_gone_one_frees_its_own(self):
        added, removed = P.plan({"10.137.0.10": 31000, "10.137.0.11": 31001}, ["10.137.0.11", "10.137.0.12"], 31000, 4)
        self.assertEqual(removed, ["10.137.0.10"])
        self.assertEqual(added, {"10.137.0.12": 31000})

    def test_a_full_range_gives_no_port(self):
        current = {"10.137.0.%d" % i: 31000 + i for i in range(4)}
        added, removed = P.plan(current, sorted(current) + ["10.137.0.99"], 31000, 4)
        self.assertEqual((added, removed), ({}, []))

    def test_nft_script_removes_stale_and_adds_missing(self):
        s = P.nft_script(CONF, {"10.137.0.10": 31000, "10.137.0.11": 31001}, {"10.137.0.11": 31001, "10.137.0.12": 31002})
        self.assertEqual(s.splitlines(), [
            "delete element inet qubes-i2p-gateway client-proxy { 10.137.0.10 }",
            "delete element inet qubes-i2p-gateway client-proxy-pairs { 10.137.0.10 . 31000 }",
            "add element inet qubes-i2p-gateway client-proxy { 10.137.0.12 : 127.0.0.1 . 31002 }",
            "add element inet qubes-i2p-gateway client-proxy-pairs { 10.137.0.12 . 31002 }",
        ])
        self.assertEqual(P.nft_script(CONF, {"10.137.0.11": 31001}, {"10.137.0.11": 31001}), "")


# `nft -j list set inet qubes-i2p-gateway app-sam` (a set of type ipv4_addr, one element).
APP_SET = ('{"nftables": [{"metainfo": {"version": "1.1.3", "release_name": "Commodore Bullmoose #4", "json_schema_version": 1}}, '
           '{"set": {"family": "inet", "name": "app-sam", "table": "qubes-i2p-gateway", "type": "ipv4_addr", "handle": 4, '
           '"elem": ["10.137.0.12"]}}]}')


class GrantedApps(unittest.TestCase):
    """SAM and I2CP for the one qube dom0 names in qubesdb: its address, only while it is a client; else nobody."""
    CLIENTS = ["10.137.0.10", "10.137.0.12"]

    def test_the_granted_address(self):
        self.assertEqual(P.app_addresses("10.137.0.12\n", self.CLIENTS, 1), (["10.137.0.12"], None))

    def test_more_addresses_than_allowed_give_nobody(self):
        got, why = P.app_addresses("10.137.0.12 10.137.0.10", self.CLIENTS, 1)
        self.assertEqual(got, [])
        self.assertIn("at most 1", why)

    def test_an_address_that_is_not_a_client_now_gives_nobody(self):
        got, why = P.app_addresses("10.137.0.99", self.CLIENTS, 1)
        self.assertEqual(got, [])
        self.assertIn("not a client qube now", why)

    def test_garbage_and_empty_give_nobody(self):
        self.assertEqual(P.app_addresses("work", self.CLIENTS, 1)[0], [])
        self.assertEqual(P.app_addresses("10.137.0.12/16", self.CLIENTS, 1)[0], [])
        self.assertEqual(P.app_addresses("", self.CLIENTS, 1)[0], [])

    def test_set_elements(self):
        self.assertEqual(P.set_elements(APP_SET), {"10.137.0.12"})
        self.assertEqual(P.set_elements(EMPTY_SET), set())


class Socks(unittest.TestCase):
    """A granted client's own SOCKS proxy: a tunnel on the keys of its HTTP proxy, the same port on 127.0.0.2."""
    SC = {"qubesdb": "/vm-config/qubes-i2p-gateway-socks", "max": 2, "map": "client-socks", "address": "127.0.0.2",
          "filePrefix": "61-qubes-i2p-gateway-socks-"}

    def test_socks_tunnel_shares_the_http_keys(self):
        t = P.socks_text(CONF, self.SC, "10.137.0.10", 31000)
        self.assertIn("[qubes-i2p-gateway-socks-10.137.0.10]\ntype = socks\naddress = 127.0.0.2\nport = 31000\n", t)
        self.assertIn("keys = %s\n" % P.keys_name(CONF, "10.137.0.10"), t)
        self.assertIn("keys = qubes-i2p-gateway-client-10.137.0.10.dat", P.tunnel_text(CONF, "10.137.0.10", 31000))

    def test_app_map_script(self):
        self.assertEqual(P.app_map_script(CONF, self.SC, {"10.137.0.9": 31003}, {"10.137.0.10": 31000}),
                         "delete element inet qubes-i2p-gateway client-socks { 10.137.0.9 }\n"
                         "add element inet qubes-i2p-gateway client-socks { 10.137.0.10 : 127.0.0.2 . 31000 }\n")
        self.assertEqual(P.app_map_script(CONF, self.SC, {"10.137.0.10": 31000}, {"10.137.0.10": 31000}), "")


class Irc(unittest.TestCase):
    """A granted client's own IRC tunnel: a client tunnel to the config's server on the keys of its HTTP proxy, the
    same port on 127.0.0.3; the server must be a .i2p host (it goes into an ini file)."""
    IC = {"qubesdb": "/vm-config/qubes-i2p-gateway-irc", "max": 2, "map": "client-irc", "address": "127.0.0.3",
          "filePrefix": "62-qubes-i2p-gateway-irc-", "destination": "irc.ilita.i2p", "destinationPort": 6667}

    def test_irc_tunnel_shares_the_http_keys(self):
        t = P.irc_text(CONF, self.IC, "10.137.0.10", 31000)
        self.assertIn("[qubes-i2p-gateway-irc-10.137.0.10]\ntype = client\naddress = 127.0.0.3\nport = 31000\n"
                      "destination = irc.ilita.i2p\ndestinationport = 6667\n", t)
        self.assertIn("keys = %s\n" % P.keys_name(CONF, "10.137.0.10"), t)
        self.assertEqual(P.app_map_script(CONF, self.IC, {}, {"10.137.0.10": 31000}),
                         "add element inet qubes-i2p-gateway client-irc { 10.137.0.10 : 127.0.0.3 . 31000 }\n")

    def test_both_apps_are_synced(self):
        self.assertEqual([k for k, _, _ in P.TUNNEL_APPS], ["socks", "irc"])

    def test_conf_refuses_a_server_that_is_no_i2p_host(self):
        import json
        import tempfile
        for dest, port in (("irc.ilita.i2p\nkeys = router.keys", 6667), ("irc.libera.chat", 6667), ("irc.ilita.i2p", 0)):
            c = dict(CONF)
            del c["networks"]
            c["irc"] = dict(self.IC, destination=dest, destinationPort=port)
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(c, f)
            try:
                with self.assertRaises(ValueError):
                    P.load_conf(f.name)
            finally:
                os.unlink(f.name)
        c = dict(CONF)
        del c["networks"]
        c["irc"] = self.IC
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(c, f)
        try:
            self.assertEqual(P.load_conf(f.name)["irc"]["destination"], "irc.ilita.i2p")
        finally:
            os.unlink(f.name)


class Fronts(unittest.TestCase):
    """Each client's HTTP front (CONF's front): started before the client's map element is given (the element points
    at it), the element withheld while it does not start, stopped once the client and its element are gone; an
    element of an older build that points at the proxy itself is replaced. One round of `sync` against a recorder
    of the commands it runs (nft, systemctl) in a real temporary tunnels directory."""

    FRONT = {"unit": "qubes-i2p-gateway-http@", "address": "127.0.0.4", "upstream": "front-upstream", "users": "front-users"}

    def setUp(self):
        import tempfile
        self.conf = dict(CONF, tunnelsDir=tempfile.mkdtemp(), front=self.FRONT, routerReload="reload")
        self.calls = []
        self.fail = set()
        self.map = MAP
        real = P.run

        def fake(argv, stdin=None):
            self.calls.append((argv, stdin))
            if argv[:4] == ["nft", "-j", "list", "set"] and argv[4] == "ip":
                return 0, ALLOWED, ""
            if argv[:4] == ["nft", "-j", "list", "set"]:
                return 0, '{"nftables": [{"set": {"family": "inet", "name": "%s", "table": "t", "handle": 9}}]}' % argv[-1], ""
            if argv[:4] == ["nft", "-j", "list", "map"]:
                return 0, self.map, ""
            if argv[0] == "systemctl" and any(u in self.fail for u in argv):
                return 1, "", "Job for %s failed." % argv[-1]
            return 0, "", ""

        P.run = fake
        self.addCleanup(setattr, P, "run", real)
        self.addCleanup(setattr, P, "router_ready", P.router_ready)
        P.router_ready = lambda conf: True

    def commands(self, word):
        return [(a, i) for a, i in self.calls if a[0] == word and not a[:2] == ["nft", "-j"]]

    def test_started_before_the_element_which_points_at_it(self):
        state = {"reload": False, "fronts": set()}
        P.sync(self.conf, state)
        starts = [a for a, _ in self.commands("systemctl") if a[1] == "start"]
        self.assertEqual(starts, [["systemctl", "start", "qubes-i2p-gateway-http@31000.service", "qubes-i2p-gateway-http@31001.service"]])
        self.assertEqual(state["fronts"], {31000, 31001})
        scripts = "".join(i for a, i in self.commands("nft") if i)
        # The old element (10.137.0.10 -> 127.0.0.1 . 31000, the proxy itself) goes, then each client's front.
        self.assertIn("delete element inet qubes-i2p-gateway client-proxy { 10.137.0.10 }\n", scripts)
        self.assertIn("add element inet qubes-i2p-gateway client-proxy { 10.137.0.10 : 127.0.0.4 . 31000 }\n", scripts)
        self.assertIn("add element inet qubes-i2p-gateway client-proxy { 10.137.0.12 : 127.0.0.4 . 31001 }\n", scripts)
        first_start = self.calls.index(next(c for c in self.calls if c[0][:2] == ["systemctl", "start"]))
        first_add = self.calls.index(next(c for c in self.calls if c[1] and "127.0.0.4" in c[1]))
        self.assertLess(first_start, first_add)

    def test_a_front_that_does_not_start_gets_no_element(self):
        self.fail = {"qubes-i2p-gateway-http@31001.service"}
        state = {"reload": False, "fronts": set()}
        P.sync(self.conf, state)
        self.assertEqual(state["fronts"], {31000})
        scripts = "".join(i for a, i in self.commands("nft") if i)
        self.assertIn("10.137.0.10 : 127.0.0.4 . 31000", scripts)
        self.assertNotIn("10.137.0.12 :", scripts)
        self.assertNotIn("10.137.0.12 . 31001", scripts)

    def test_conf_refuses_a_front_that_is_not_one(self):
        import json
        import tempfile
        for bad in ({"unit": "x@; rm -rf /"}, {"address": "10.137.0.1"}, {"address": "127.0.0.4 . 1"}, {"unit": "qubes-i2p-gateway-http"},
                    {"upstream": "x }; flush ruleset"}, {"users": None}):
            front = dict(self.FRONT, **bad)
            c = dict(CONF, front=front)
            del c["networks"]
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(c, f)
            try:
                with self.assertRaises(ValueError, msg=str(front)):
                    P.load_conf(f.name)
            finally:
                os.unlink(f.name)

    def test_gone_client_front_stopped_after_its_element(self):
        state = {"reload": False, "fronts": set()}
        P.sync(self.conf, state)
        self.map = MAP.replace('"elem": [["10.137.0.10", {"concat": ["127.0.0.1", 31000]}]]',
                               '"elem": [["10.137.0.10", {"concat": ["127.0.0.4", 31000]}], ["10.137.0.12", {"concat": ["127.0.0.4", 31001]}]]')
        self.calls = []
        global ALLOWED
        saved = ALLOWED
        try:
            ALLOWED = saved.replace(', {"concat": ["vif5.0", "10.137.0.12"]}', "")
            P.sync(self.conf, state)
        finally:
            ALLOWED = saved
        stop = [i for i, (a, _) in enumerate(self.calls) if a[:3] == ["systemctl", "--no-block", "stop"]]
        gone = [i for i, (a, inp) in enumerate(self.calls) if inp and "delete element inet qubes-i2p-gateway client-proxy { 10.137.0.12 }" in inp]
        self.assertEqual(len(stop), 1)
        self.assertEqual(self.calls[stop[0]][0], ["systemctl", "--no-block", "stop", "qubes-i2p-gateway-http@31001.service"])
        self.assertTrue(gone and gone[0] < stop[0])
        self.assertEqual(state["fronts"], {31000})
        self.assertEqual([a for a, _ in self.calls if a[:2] == ["systemctl", "start"]], [])


class FrontSets(unittest.TestCase):
    """The output chain's sets of the fronts: each running front's user . port and user, read from its listener."""

    CONF = dict(CONF, front={"unit": "qubes-i2p-gateway-http@", "address": "127.0.0.4", "upstream": "front-upstream", "users": "front-users"})
    # /proc/net/tcp: two fronts listening (127.0.0.4:31000 as 61184, :31001 as 61185), i2pd's proxy (127.0.0.1:31000),
    # a connection (not a listener) on 127.0.0.4:31002.
    TCP = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
           "   0: 0400007F:7918 00000000:0000 0A 00000000:00000000 00:00000000 00000000 61184        0 1 1\n"
           "   1: 0400007F:7919 00000000:0000 0A 00000000:00000000 00:00000000 00000000 61185        0 2 1\n"
           "   2: 0100007F:7918 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 3 1\n"
           "   3: 0400007F:791A 0A89000A:9C40 01 00000000:00000000 00:00000000 00000000 61186        0 4 1\n")

    def test_listeners_by_port(self):
        self.assertEqual(P.listeners(self.TCP, "127.0.0.4", {31000, 31001, 31002}), {31000: 61184, 31001: 61185})
        self.assertEqual(P.listeners(self.TCP, "127.0.0.1", {31000}), {31000: 105})

    def test_set_values_and_uids(self):
        up = ('{"nftables": [{"metainfo": {"version": "1.1.3"}}, {"set": {"family": "inet", "name": "front-upstream", '
              '"table": "qubes-i2p-gateway", "type": ["uid", "inet_service"], "handle": 9, '
              '"elem": [{"concat": [61184, 31000]}, {"concat": ["root", 31001]}]}}]}')
        self.assertEqual(P.set_values(up), {(61184, 31000), ("root", 31001)})
        self.assertEqual([P.uid_of(v) for v in (61184, "61185", "root", "no-such-user-here", None, True)], [61184, 61185, 0, None, None, None])

    def test_script_rewrites_both_sets_when_either_differs(self):
        pairs, users = {(61184, 31000), (61185, 31001)}, {61184, 61185}
        self.assertEqual(P.front_sets_script(self.CONF, pairs, users, pairs, users), "")
        self.assertEqual(P.front_sets_script(self.CONF, {(61184, 31000)}, {61184}, pairs, users).splitlines(), [
            "flush set inet qubes-i2p-gateway front-upstream",
            "flush set inet qubes-i2p-gateway front-users",
            "add element inet qubes-i2p-gateway front-upstream { 61184 . 31000, 61185 . 31001 }",
            "add element inet qubes-i2p-gateway front-users { 61184, 61185 }",
        ])
        self.assertEqual(P.front_sets_script(self.CONF, pairs, users, set(), set()).splitlines(), [
            "flush set inet qubes-i2p-gateway front-upstream", "flush set inet qubes-i2p-gateway front-users"])


class RouterReload(unittest.TestCase):
    """How i2pd is made to read changed tunnel files: a reload, or (a gateway with a published I2P site, whose server
    tunnel i2pd 2.56's reload leaves taking no stream: test/net/publish-client-destinations.test.ts) a try-restart."""

    def test_a_reload_unless_the_config_says_restart(self):
        self.assertEqual(P.router_reload(CONF), "reload")
        self.assertEqual(P.router_reload(dict(CONF, routerReload="reload")), "reload")
        self.assertEqual(P.router_reload(dict(CONF, routerReload="try-restart")), "try-restart")

    def test_any_other_verb_is_refused(self):
        for bad in ("restart", "stop", "reload-or-restart", "", 1):
            with self.assertRaises(ValueError):
                P.router_reload(dict(CONF, routerReload=bad))

    def test_the_restart_is_queued_not_waited_for(self):
        """systemctl's restart returns once queued (--no-block): i2pd's stop may take its unit's whole TimeoutStopSec
        (30 s: i2pd 2.56 waits for an address book download at its stop), longer than this program's 30 s limit on
        a command; the reload is a signal and is waited for."""
        conf = dict(CONF, routerUnit="i2pd.service")
        self.assertEqual(P.router_command(dict(conf, routerReload="reload")), ["systemctl", "reload", "i2pd.service"])
        self.assertEqual(P.router_command(dict(conf, routerReload="try-restart")),
                         ["systemctl", "--no-block", "try-restart", "i2pd.service"])


if __name__ == "__main__":
    unittest.main()

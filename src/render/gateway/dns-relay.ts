/**
 * DNS over TCP for Tor (Tor on only): /usr/libexec/qubes-i2p-gateway/dns-tcp-relay and its unit.
 *
 * dnsmasq forwards a query it received over TCP to its `server=` over TCP, and a client's resolver uses TCP
 * after a truncated answer or when told to (`options use-vc`). Tor's DNSPort speaks UDP only, so without
 * this relay every clearnet name asked over TCP goes unanswered. The relay listens on TCP at the address and
 * port of Tor's DNSPort (TCP and UDP ports are separate, and dnsmasq uses one server address for both) and
 * passes each length-prefixed query on as one UDP datagram, returning the answer with its length prefix.
 *
 * Python 3 from the standard library only (Debian templates carry python3; the package depends on it). The
 * program takes every address and limit on its command line, so the script itself never changes with the
 * config; the unit renders them from validated values.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { textFile, type RenderedFile } from '../../files.ts';
import { comment, gatewayFlag, generatedHeader, PATHS, UNITS, unitPath } from './common.ts';
import { SANDBOX } from './hardening.ts';
import { port } from './values.ts';

/** Where Tor's DNSPort listens (torrc: `DNSPort 127.0.0.1:<dnsPort>`), and so where the relay listens on TCP. */
const LOOPBACK = '127.0.0.1';

/** Limits, written into the unit's command line. */
export const RELAY_LIMITS = {
  /** dnsmasq serves at most 20 TCP clients at once by default (--max-tcp-connections), one upstream connection each. */
  maxConnections: 64,
  /** A query is a header and one question (a name of at most 255 bytes), plus EDNS options: far below this. */
  maxQuery: 4096,
  /** Seconds a connection may sit without a complete next query (RFC 7766 asks servers for idle timeouts). */
  idleTimeout: 10,
  /** Seconds to wait for Tor's answer (a name resolved through a new circuit takes a few) or to hand it back. */
  answerTimeout: 10,
} as const;

const RELAY_SOURCE = String.raw`
import argparse
import math
import os
import signal
import socket
import struct
import sys
import threading
import time

DNS_HEADER = 12
# The largest UDP payload; it always fits the 2-byte TCP length prefix (RFC 1035 4.2.2).
MAX_ANSWER = 65535


def address(text):
    host, sep, port = text.rpartition(":")
    try:
        socket.inet_pton(socket.AF_INET, host)
        number = int(port, 10)
    except (OSError, ValueError):
        number = 0
    if not sep or not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError("expected IPV4:PORT, got %r" % text)
    return host, number


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError("expected a positive number, got %r" % text)
        return value

    return parse


def log(message):
    # stderr is the journal. Only the relay's own state: never a query, a name or an answer.
    print("dns-tcp-relay: " + message, file=sys.stderr, flush=True)


def recv_exact(conn, count, deadline):
    """count bytes, or None when the peer closes first or the deadline passes."""
    data = b""
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        conn.settimeout(left)
        try:
            chunk = conn.recv(count - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def ask_upstream(query, upstream, timeout):
    """The upstream's UDP answer to query, or None (no answer in time, nothing listening)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        # Connected: a fresh source port per query, and the kernel passes on datagrams from the upstream only.
        udp.connect(upstream)
        udp.send(query)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            udp.settimeout(left)
            try:
                answer = udp.recv(MAX_ANSWER)
            except OSError:
                return None
            # A response (QR set) with this query's ID; anything else is a stray: keep waiting.
            if len(answer) >= DNS_HEADER and answer[:2] == query[:2] and answer[2] & 0x80:
                return answer


def serve(conn, args, slots):
    try:
        while True:
            # Each message must arrive whole within the idle timeout, so a silent or trickling client is let go.
            deadline = time.monotonic() + args.idle_timeout
            prefix = recv_exact(conn, 2, deadline)
            if prefix is None:
                return
            (length,) = struct.unpack("!H", prefix)
            # Not a query: shorter than a DNS header, longer than any real query, or a response (QR set).
            if not DNS_HEADER <= length <= args.max_query:
                return
            query = recv_exact(conn, length, deadline)
            if query is None or query[2] & 0x80:
                return
            answer = ask_upstream(query, args.upstream, args.answer_timeout)
            if answer is None:
                # No answer: close, so the client (dnsmasq) gives up at once instead of waiting on us.
                return
            conn.settimeout(args.answer_timeout)
            conn.sendall(struct.pack("!H", len(answer)) + answer)
    except OSError:
        return
    except Exception as e:  # a bug here must end one connection, not the relay; the type only, no data
        log("connection dropped after an unexpected %s" % type(e).__name__)
    finally:
        conn.close()
        slots.release()


def notify_ready():
    """Type=notify: tell systemd the listener is open (units ordered after this one start only then)."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(path)
        s.sendall(b"READY=1")


def main():
    p = argparse.ArgumentParser(description="Relay DNS over TCP to a DNS server that answers over UDP only.")
    p.add_argument("--listen", type=address, required=True, help="IPV4:PORT to accept TCP connections on")
    p.add_argument("--upstream", type=address, required=True, help="IPV4:PORT of the UDP-only DNS server")
    p.add_argument("--max-connections", type=positive(int), required=True, help="connections served at once")
    p.add_argument("--max-query", type=positive(int), required=True, help="longest query accepted, in bytes")
    p.add_argument("--idle-timeout", type=positive(float), required=True, help="seconds to wait for a query")
    p.add_argument("--answer-timeout", type=positive(float), required=True, help="seconds to wait for an answer")
    args = p.parse_args()
    if args.max_query > 65535:
        p.error("--max-query: at most 65535 (the TCP length prefix)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Each connection is one thread, at most --max-connections of them: small stacks keep that bounded too.
    threading.stack_size(256 * 1024)
    slots = threading.BoundedSemaphore(args.max_connections)
    listener = socket.create_server(args.listen, backlog=args.max_connections)
    log("listening on TCP %s:%d, relaying to UDP %s:%d" % (args.listen + args.upstream))
    notify_ready()
    warned = -math.inf
    while True:
        conn, _ = listener.accept()
        if not slots.acquire(blocking=False):
            # Full: refuse at once (the client sees the connection close) rather than queue without bound.
            conn.close()
            now = time.monotonic()
            if now - warned > 60:
                warned = now
                log("%d connections open: refusing new ones" % args.max_connections)
            continue
        threading.Thread(target=serve, args=(conn, args, slots), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
`;

export function renderDnsRelayScript(): string {
  return (
    // -I: isolated mode, no PYTHON* variables, no user site, not even the script's own directory on the path.
    '#!/usr/bin/python3 -I\n' +
    generatedHeader('qubes-i2p-gateway DNS TCP relay: dnsmasq\'s TCP queries to Tor\'s UDP-only DNSPort.') +
    comment([
      '',
      'dnsmasq forwards a query that came over TCP to its server over TCP, but Tor\'s DNSPort answers UDP only.',
      'This listens on TCP where Tor\'s DNSPort listens on UDP (same address and port: dnsmasq has one server',
      'address for both) and relays each length-prefixed message as one datagram, several per connection, the',
      'answer back with its length prefix. Bounded: connections, query size, idle and answer time. It logs no',
      'query, name or answer. Run by qubes-i2p-gateway-dns-relay.service, which gives every argument.',
    ]) +
    RELAY_SOURCE
  );
}

export function renderDnsRelayUnit(config: GatewayConfig): string {
  const at = `${LOOPBACK}:${port(config.tor.dnsPort)}`;
  const L = RELAY_LIMITS;
  return (
    generatedHeader('DNS over TCP for the gateway\'s Tor (relays dnsmasq\'s TCP queries to the UDP-only DNSPort).') +
    '\n[Unit]\n' +
    'Description=DNS TCP relay for qubes-i2p-gateway (dnsmasq to Tor\'s UDP-only DNSPort)\n' +
    `Documentation=file:${PATHS.dnsRelay}\n` +
    comment(['Only in the gateway qube (its qvm-service); never in the template or other qubes built from it.']) +
    `ConditionPathExists=${gatewayFlag(config)}\n` +
    comment(['It needs nothing to start (it asks Tor per query); dnsmasq orders itself after it.']) +
    'After=network.target qubes-firewall.service\n' +
    `PartOf=${UNITS.target}\n` +
    '\n[Service]\n' +
    comment(['Ready once it listens (it tells systemd), so dnsmasq\'s first TCP query finds it.']) +
    'Type=notify\n' +
    comment([
      'Never root, and no account on disk: a user of its own for as long as it runs. The firewall lets only Tor\'s',
      'and the router\'s users out of the gateway, so the relay reaches loopback and nothing else; systemd holds',
      'it to loopback as well.',
    ]) +
    'DynamicUser=yes\n' +
    'IPAddressAllow=localhost\n' +
    'IPAddressDeny=any\n' +
    comment([
      `From TCP ${at}, where Tor's DNSPort listens on UDP, to UDP ${at}. Limits: connections at once`,
      '(dnsmasq keeps at most 20 TCP clients by default, one upstream connection each), query bytes, seconds idle',
      'and seconds to an answer.',
    ]) +
    `ExecStart=${PATHS.dnsRelay} --listen ${at} --upstream ${at} --max-connections ${L.maxConnections} --max-query ${L.maxQuery} ` +
    `--idle-timeout ${L.idleTimeout} --answer-timeout ${L.answerTimeout}\n` +
    'Restart=on-failure\n' +
    'CapabilityBoundingSet=\n' +
    SANDBOX.join('\n') +
    '\n'
  );
}

export function renderDnsRelay(config: GatewayConfig): readonly RenderedFile[] {
  if (!config.tor.enabled) return [];
  return [textFile(PATHS.dnsRelay, renderDnsRelayScript(), 0o755), textFile(unitPath(UNITS.dnsRelay), renderDnsRelayUnit(config))];
}

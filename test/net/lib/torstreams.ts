/**
 * Tor's STREAM events, read as root in a gateway from Tor's control socket: a watcher program (Python, run in the
 * gateway machine, emulated or booted) and the parser that groups the events by stream. Used by
 * test/net/dns-isolation.test.ts and test/boot/privnet.test.ts to prove which source address and which circuit
 * each client qube's DNS lookups and connections had.
 */
/**
 * Tor's control socket, as root in the gateway: cookie authentication, then every STREAM event (Tor 0.4.9 always
 * sends the extended fields: SOURCE_ADDR, PURPOSE, ...) written to a file as it comes, for `seconds`.
 */
export const WATCH = String.raw`
import binascii, socket, sys, time
sock_path, cookie_path, out_path, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
f = s.makefile("rwb", buffering=0)
def cmd(line):
    f.write(line.encode() + b"\r\n")
    reply = f.readline().decode().strip()
    if not reply.startswith("250"):
        raise SystemExit("control: %s -> %s" % (line.split()[0], reply))
cmd("AUTHENTICATE " + binascii.hexlify(open(cookie_path, "rb").read()).decode())
cmd("SETEVENTS STREAM")
out = open(out_path, "w")
out.write("READY\n")
out.flush()
s.settimeout(0.5)
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        line = f.readline()
    except (socket.timeout, OSError):
        continue
    if not line:
        break
    out.write(line.decode(errors="replace").strip() + "\n")
    out.flush()
`;

export interface Stream {
  readonly id: string;
  target: string;
  source: string;
  purpose: string;
  readonly circuits: Set<string>;
  readonly statuses: string[];
}

/** The STREAM events, by stream: target, SOURCE_ADDR, PURPOSE, every circuit it was attached to. */
export function streams(lines: readonly string[]): Stream[] {
  const byId = new Map<string, Stream>();
  for (const line of lines) {
    const m = /^650 STREAM (\d+) (\S+) (\d+) (\S+)(.*)$/.exec(line);
    if (!m) continue;
    const [, id, status, circ, target, rest] = m as unknown as [string, string, string, string, string, string];
    let s = byId.get(id);
    if (s === undefined) {
      s = { id, target, source: '', purpose: '', circuits: new Set(), statuses: [] };
      byId.set(id, s);
    }
    s.statuses.push(status);
    if (circ !== '0') s.circuits.add(circ);
    const src = /\bSOURCE_ADDR=(\S+)/.exec(rest)?.[1];
    if (src !== undefined) s.source = src;
    const purpose = /\bPURPOSE=(\S+)/.exec(rest)?.[1];
    if (purpose !== undefined) s.purpose = purpose;
    if (s.target === '') s.target = target;
  }
  return [...byId.values()];
}


/** The lookups of `names` and the connections of `clientAddr` to `webAddr`, for one client. */
export function clientStreams(all: readonly Stream[], names: readonly string[], clientAddr: string, webAddr: string): { lookups: Stream[]; connections: Stream[] } {
  return {
    lookups: all.filter((s) => names.some((n) => s.target === `${n}:0`)),
    connections: all.filter((s) => s.source.startsWith(`${clientAddr}:`) && s.target.startsWith(webAddr)),
  };
}

export const circuitsOf = (ss: readonly Stream[]): Set<string> => new Set(ss.flatMap((s) => [...s.circuits]));

export const summary = (ss: readonly Stream[]): string =>
  ss.map((s) => `${s.target} from ${s.source} (${s.purpose}) circuits ${[...s.circuits].join(',')} ${s.statuses.join('>')}`).join('\n');

/** A client qube's stand-in address for Tor's DNSPort: 10.B.C.D -> 127.B.C.D (gateway/dns-relay). */
export const standIn = (addr: string): string => addr.replace(/^10\./, '127.');

/**
 * A service qube for a published service (config `publish`), in the lab's `svc` namespace (loopback only, no
 * netvm): the "web application" (netlab.py http-proxy, which logs each request head with its peer) on its
 * 127.0.0.1:PORT, and tools/qrexec-dom0.py, the stand-in for the gateway's qrexec agent socket, dom0's policy (our
 * rendered 70-i2p-gateway-publish.policy, then 90-default's deny) and the qube's qubes.ConnectTCP. The gateway's
 * qrexec-client-vm stand-in (tools/qrexec-client-vm) connects to `socket`, a host path that is the gateway
 * machine's /run/qubes/qrexec-agent. Used by test/net/publish.test.ts and test/boot/publish-privnet.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import type { GatewayConfig } from '../../../src/config/schema.ts';
import { renderPublishStates } from '../../../src/render/salt/publish.ts';
import { PYTHON, type Lab, type UpEvent } from './lab.ts';
import type { Proc } from './sh.ts';

/** The policy file dom0 holds after i2p-gateway.publish: file.managed's contents in the rendered state. */
export function dom0Policy(config: GatewayConfig): string {
  const sls = renderPublishStates(config).find((f) => f.path === 'i2p-gateway/publish.sls');
  const doc = load(new TextDecoder().decode(sls?.data)) as Record<string, { 'file.managed'?: Array<Record<string, string>> }>;
  // The state that writes the policy file (the service qubes' netvm states come before it).
  const args = Object.values(doc).find((s) => s['file.managed'] !== undefined)?.['file.managed'] ?? [];
  const contents = args.find((a) => 'contents' in a)?.['contents'];
  if (contents === undefined) throw new Error('publish.sls has no file.managed contents');
  return contents;
}

export interface ServiceQubeOptions {
  readonly config: GatewayConfig;
  /** The service qube's name (the publish entry's `qube`). */
  readonly qube: string;
  /** Where its application listens (the publish entry's `port`), on svc's 127.0.0.1. */
  readonly port: number;
  /** What the application answers (a test that sees it got the application's page). */
  readonly banner: string;
  /** The agent socket, a host path (the gateway machine's /run/qubes/qrexec-agent); its directory is made. */
  readonly socket: string;
}

export interface ServiceQube {
  readonly webapp: Proc;
  readonly dom0: Proc;
  /** Request heads the application received (ev "proxy": peer, request line, headers). */
  hits(): UpEvent[];
  /** qrexec calls dom0's stand-in saw (ev "call": argv, uid, source, target, policy, result). */
  calls(): UpEvent[];
  /** Empty both logs. */
  clear(): void;
}

/** Start the application and dom0's stand-in in the lab's svc; both end with the lab. */
export async function startServiceQube(lab: Lab, o: ServiceQubeOptions): Promise<ServiceQube> {
  const logPath = (name: string): string => join(lab.scratch, 'logs', name);
  const clear = (): void => {
    for (const f of ['webapp.jsonl', 'qrexec.jsonl']) writeFileSync(logPath(f), '');
  };
  clear();
  const tools = join(lab.scratch, 'tools');
  const webapp = lab.nsSpawn('svc', 'webapp', [PYTHON, join(tools, 'netlab.py'), 'http-proxy', '--listen', `127.0.0.1:${o.port}`, '--banner', o.banner, '--log', logPath('webapp.jsonl')]);
  await webapp.waitForLine('READY', 5000);
  const policy = join(lab.scratch, 'dom0', '70-i2p-gateway-publish.policy');
  mkdirSync(join(lab.scratch, 'dom0'), { recursive: true });
  writeFileSync(policy, dom0Policy(o.config));
  mkdirSync(join(o.socket, '..'), { recursive: true, mode: 0o755 });
  const dom0 = lab.nsSpawn('svc', 'qrexec-dom0', [
    PYTHON, join(tools, 'qrexec-dom0.py'),
    '--socket', o.socket,
    '--source', o.config.qubes.gateway,
    '--qube', o.qube,
    '--policy', policy,
    '--log', logPath('qrexec.jsonl'),
  ]);
  await dom0.waitForLine('READY', 5000);
  return {
    webapp,
    dom0,
    hits: () => lab.readLog('webapp.jsonl').filter((e) => e.ev === 'proxy'),
    calls: () => lab.readLog('qrexec.jsonl').filter((e) => e.ev === 'call'),
    clear,
  };
}

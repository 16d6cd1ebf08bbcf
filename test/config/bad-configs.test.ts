import { describe, expect, it } from 'vitest';
import { parseConfigText, parseConfigValue, MAX_CONFIG_BYTES } from '../../src/config/load.ts';
import { formatIssues } from '../../src/config/format.ts';
import { I2P_APPS } from '../../src/config/schema.ts';

/** [what, config, the field path the first error must name, a word the message must contain] */
const BAD: readonly [string, unknown, string, string][] = [
  ['qube name with a space', { qubes: { gateway: 'sys i2p' } }, 'qubes.gateway', 'Fix:'],
  ['qube name starting with a digit', { qubes: { gateway: '1sys' } }, 'qubes.gateway', 'start with a letter'],
  ['qube name too long', { qubes: { gateway: 'a'.repeat(32) } }, 'qubes.gateway', '31'],
  ['qube name dom0', { qubes: { netvm: 'dom0' } }, 'qubes.netvm', 'reserves'],
  ['qube name none', { qubes: { template: 'none' } }, 'qubes.template', 'reserves'],
  ['qube name ending -dm', { qubes: { gateway: 'sys-i2p-dm' } }, 'qubes.gateway', '-dm'],
  ['empty qube name', { qubes: { sourceTemplate: '' } }, 'qubes.sourceTemplate', 'qube name'],
  ['qube name as a number', { qubes: { gateway: 12 } }, 'qubes.gateway', 'text'],
  ['client with shell', { qubes: { clients: ['work', 'x;reboot'] } }, 'qubes.clients.1', 'qube name'],
  ['clients not a list', { qubes: { clients: 'work' } }, 'qubes.clients', 'list'],
  ['client listed twice', { qubes: { clients: ['work', 'work'] } }, 'qubes.clients.1', 'twice'],
  ['gateway as client', { qubes: { clients: ['sys-i2p'] } }, 'qubes.clients.0', 'cannot be a client'],
  ['template equals source', { qubes: { template: 'debian-13-minimal' } }, 'qubes.template', 'also qubes.sourceTemplate'],
  ['gateway equals netvm', { qubes: { gateway: 'sys-firewall' } }, 'qubes.netvm', 'also qubes.gateway'],
  ['unknown label', { qubes: { label: 'pink' } }, 'qubes.label', 'purple'],
  ['memory as a string', { qubes: { memory: '400' } }, 'qubes.memory', 'whole number'],
  ['memory too small', { qubes: { memory: 100 } }, 'qubes.memory', '256'],
  ['memory fractional', { qubes: { memory: 400.5 } }, 'qubes.memory', 'whole number'],
  ['maxmem below memory', { qubes: { memory: 800, maxmem: 500 } }, 'qubes.maxmem', 'at least memory'],
  ['vcpus zero', { qubes: { vcpus: 0 } }, 'qubes.vcpus', '1 to 64'],
  ['autostart as yes-string', { qubes: { autostart: 'yes' } }, 'qubes.autostart', 'true or false'],
  ['service with a slash', { qubes: { service: 'i2p/../x' } }, 'qubes.service', 'service name'],
  ['service named tor', { qubes: { service: 'tor' } }, 'qubes.service', "distribution's own tor"],
  ['service named tinyproxy', { qubes: { service: 'tinyproxy' } }, 'qubes.service', 'another service name'],
  ...[
    // Qubes OS 4.3's default-enabled qvm-services (rules.ts QUBES_DEFAULT_SERVICES, from qubes-core-agent-linux
    // vm-systemd/qubes-sysinit.sh and qubes-core-admin qubes/app.py, branch release4.3): each one refused.
    'network-manager', 'qubes-network', 'qubes-update-check', 'qubes-updates-proxy', 'meminfo-writer', 'qubes-firewall',
    'software-rendering', 'tracker', 'evolution-data-server', 'updates-proxy-setup', 'clocksync',
  ].map((s): [string, unknown, string, string] => [`service ${s}, on by default in Qubes`, { qubes: { service: s } }, 'qubes.service', 'Qubes OS turns on by default']),
  ['service upper case', { qubes: { service: 'I2P' } }, 'qubes.service', 'lower-case'],
  ['unknown debian release', { debian: { release: 'jessie' } }, 'debian.release', 'trixie'],
  ['virtual IP not an address', { network: { virtualIp: '10.100.100' } }, 'network.virtualIp', 'IPv4'],
  ['virtual IP octet > 255', { network: { virtualIp: '10.100.100.256' } }, 'network.virtualIp', 'IPv4'],
  ['virtual IP in qube range', { network: { virtualIp: '10.137.0.50' } }, 'network.virtualIp', '10.137.0.0/16'],
  ['virtual IP in DNS range', { network: { virtualIp: '10.139.1.1' } }, 'network.virtualIp', '10.139.0.0/16'],
  ['virtual IP in Tor virtual net', { network: { virtualIp: '10.200.0.1' } }, 'network.virtualIp', 'VirtualAddrNetworkIPv4'],
  ['virtual IP loopback', { network: { virtualIp: '127.0.0.2' } }, 'network.virtualIp', 'loopback'],
  ['virtual IP multicast', { network: { virtualIp: '239.1.1.1' } }, 'network.virtualIp', 'multicast'],
  ['client range without prefix', { network: { clientRanges: ['10.137.0.0'] } }, 'network.clientRanges.0', 'ADDRESS/PREFIX'],
  ['client range /33', { network: { clientRanges: ['10.137.0.0/33'] } }, 'network.clientRanges.0', 'ADDRESS/PREFIX'],
  ['client ranges empty', { network: { clientRanges: [] } }, 'network.clientRanges', 'at least one'],
  ['client range over Tor net', { network: { clientRanges: ['10.0.0.0/8'] } }, 'network.clientRanges.0', '10.192.0.0/10'],
  ['port zero', { tinyproxy: { port: 0 } }, 'tinyproxy.port', '1 to 65535'],
  ['port too big', { tor: { transPort: 70000 } }, 'tor.transPort', '65535'],
  ['port as text', { tor: { dnsPort: 'fiftythree' } }, 'tor.dnsPort', 'whole number'],
  ['tinyproxy on DNS port', { tinyproxy: { port: 53 } }, 'tinyproxy.port', 'dnsmasq'],
  ['tor on the router proxy port', { tor: { transPort: 4444 } }, 'tor.transPort', 'i2pd router'],
  ['tor ports equal', { tor: { transPort: 9040, dnsPort: 9040 } }, 'tor.dnsPort', 'tor.transPort'],
  ['tinyproxy on Java console', { i2p: { router: 'i2p' }, tinyproxy: { port: 7657 } }, 'tinyproxy.port', 'i2p router'],
  ['tor enabled as string', { tor: { enabled: 'on' } }, 'tor.enabled', 'true or false'],
  ['unknown router', { i2p: { router: 'kovri' } }, 'i2p.router', 'i2pd'],
  ['keyring with i2pd', { i2p: { keyring: 'k.gpg' } }, 'i2p.keyring', 'only used with router i2p'],
  ['keyring with newline', { i2p: { router: 'i2p', keyring: 'a\nb' } }, 'i2p.keyring', 'control characters'],
  ['expose unknown port', { i2p: { expose: { sam: true } } }, 'i2p.expose.sam', 'not a known setting'],
  ['Java router console exposed', { i2p: { router: 'i2p', keyring: 'k.gpg', expose: { console: true } } }, 'i2p.expose.console', 'Fix: remove i2p.expose.console'],
  ['i2pd console exposed', { i2p: { expose: { console: true } } }, 'i2p.expose.console', "shows every client's I2P streams"],
  ['client destinations misspelt', { i2p: { clientDestinations: 'per-qube' } }, 'i2p.clientDestinations', 'per-client'],
  ['client destinations per client with the Java router', { i2p: { router: 'i2p', keyring: 'k.gpg', clientDestinations: 'per-client' } }, 'i2p.clientDestinations', 'needs router i2pd'],
  ['tinyproxy port among the client proxies\' ports', { tinyproxy: { port: 31005 } }, 'tinyproxy.port', 'outside that range'],
  ['Tor port among the client proxies\' ports', { tor: { transPort: 32000 } }, 'tor.transPort', '31000-32023'],
  ['console exposed: the fix names the ways in the gateway', { i2p: { expose: { console: true } } }, 'i2p.expose.console', 'qubes-i2p-gateway status'],
  ['bandwidth class unknown', { i2p: { bandwidth: 'Q' } }, 'i2p.bandwidth', 'K L M N O P X'],
  ['bandwidth class lower case', { i2p: { bandwidth: 'p' } }, 'i2p.bandwidth', 'KB/s from 12 to 1000000'],
  ['bandwidth rate below class K', { i2p: { bandwidth: 5 } }, 'i2p.bandwidth', 'from 12'],
  ['bandwidth rate too high', { i2p: { bandwidth: 2000000 } }, 'i2p.bandwidth', 'to 1000000'],
  ['bandwidth with a unit', { i2p: { bandwidth: '256KB' } }, 'i2p.bandwidth', 'bandwidth class or a rate'],
  ['bandwidth fractional', { i2p: { bandwidth: 100.5 } }, 'i2p.bandwidth', 'whole number'],
  ['share above 100', { i2p: { share: 120 } }, 'i2p.share', '0 to 100'],
  ['share negative', { i2p: { share: -1 } }, 'i2p.share', '0 to 100'],
  ['share as a percent string', { i2p: { share: '80%' } }, 'i2p.share', 'whole number'],
  ['transit tunnels zero', { i2p: { transitTunnels: 0 } }, 'i2p.transitTunnels', 'or none to take part in no'],
  ['transit tunnels as false', { i2p: { transitTunnels: false } }, 'i2p.transitTunnels', 'none'],
  ['transit tunnels too many', { i2p: { transitTunnels: 1000001 } }, 'i2p.transitTunnels', '1000000'],
  ['floodfill on', { i2p: { floodfill: true } }, 'i2p.floodfill', "Qubes' NAT"],
  ['floodfill as a string', { i2p: { floodfill: 'off' } }, 'i2p.floodfill', 'true or false'],
  ['subscriptions not a list', { i2p: { subscriptions: 'http://reg.i2p/hosts.txt' } }, 'i2p.subscriptions', 'not a list'],
  ['subscription over https', { i2p: { subscriptions: ['https://reg.i2p/hosts.txt'] } }, 'i2p.subscriptions.0', 'http://HOST.i2p/PATH'],
  ['subscription of a clearnet host', { i2p: { subscriptions: ['http://example.com/hosts.txt'] } }, 'i2p.subscriptions.0', '.i2p host'],
  ['subscription without a path', { i2p: { subscriptions: ['http://reg.i2p'] } }, 'i2p.subscriptions.0', 'http://HOST.i2p/PATH'],
  ['subscription with a comma (i2pd splits there)', { i2p: { subscriptions: ['http://reg.i2p/a,http://evil.i2p/b'] } }, 'i2p.subscriptions.0', 'http://HOST.i2p/PATH'],
  ['subscription with a newline', { i2p: { subscriptions: ['http://reg.i2p/hosts.txt\n[sam]\nenabled = true'] } }, 'i2p.subscriptions.0', 'http://HOST.i2p/PATH'],
  ['subscription with a comment sign', { i2p: { subscriptions: ['http://reg.i2p/hosts.txt#x'] } }, 'i2p.subscriptions.0', 'http://HOST.i2p/PATH'],
  ['subscription host ending in -.i2p', { i2p: { subscriptions: ['http://evil.com/.i2p/hosts.txt'] } }, 'i2p.subscriptions.0', '.i2p host'],
  ['subscription with user info', { i2p: { subscriptions: ['http://evil.com@reg.i2p/hosts.txt'] } }, 'i2p.subscriptions.0', '.i2p host'],
  ['subscription listed twice', { i2p: { subscriptions: ['http://reg.i2p/hosts.txt', 'http://REG.i2p/hosts.txt'] } }, 'i2p.subscriptions.1', 'list each URL once'],
  ['too many subscriptions', { i2p: { subscriptions: Array.from({ length: 17 }, (_, i) => `http://s${i}.i2p/hosts.txt`) } }, 'i2p.subscriptions', 'at most 16'],
  ['bandwidth with the Java router', { i2p: { router: 'i2p', keyring: 'k.gpg', bandwidth: 'P' } }, 'i2p.bandwidth', "Java router's console"],
  ['transit with the Java router', { i2p: { router: 'i2p', keyring: 'k.gpg', transitTunnels: 'none' } }, 'i2p.transitTunnels', 'only rendered for router i2pd'],
  ['subscriptions with the Java router', { i2p: { router: 'i2p', keyring: 'k.gpg', subscriptions: [] } }, 'i2p.subscriptions', 'only rendered for router i2pd'],
  // I2P applications for chosen client qubes (issue 23): SAM and I2CP have no authentication, one qube at most.
  ['I2CP exposed to every client (the former form)', { i2p: { expose: { i2cp: true } } }, 'i2p.expose.i2cp', 'i2p.apps.i2cp: ['],
  ['I2CP exposed to every client: the reason', { i2p: { expose: { i2cp: true } } }, 'i2p.expose.i2cp', 'no authentication'],
  ['SAM granted to two qubes', { qubes: { clients: ['work', 'torrents'] }, i2p: { apps: { sam: ['torrents', 'work'] } } }, 'i2p.apps.sam.1', 'finds sessions by their ID across all its clients'],
  ['SAM granted to two qubes: the fix', { qubes: { clients: ['work', 'torrents'] }, i2p: { apps: { sam: ['torrents', 'work'] } } }, 'i2p.apps.sam.1', 'list one qube only'],
  ['I2CP granted to two qubes', { qubes: { clients: ['a', 'b'] }, i2p: { apps: { i2cp: ['a', 'b'] } } }, 'i2p.apps.i2cp.1', 'no authentication'],
  ['SAM granted to a qube that is not a client', { qubes: { clients: ['work'] }, i2p: { apps: { sam: ['torrents'] } } }, 'i2p.apps.sam.0', 'add torrents to qubes.clients'],
  ['SAM with shared destinations', { qubes: { clients: ['work'] }, i2p: { clientDestinations: 'shared', apps: { sam: ['work'] } } }, 'i2p.apps.sam', 'needs router i2pd with i2p.clientDestinations: per-client'],
  ['I2CP with the Java router', { qubes: { clients: ['work'] }, i2p: { router: 'i2p', keyring: 'k.gpg', apps: { i2cp: ['work'] } } }, 'i2p.apps.i2cp', 'needs router i2pd'],
  ['SAM as one name, not a list', { qubes: { clients: ['work'] }, i2p: { apps: { sam: 'work' } } }, 'i2p.apps.sam', 'list'],
  ['SAM granted to a bad name', { i2p: { apps: { sam: ['x;reboot'] } } }, 'i2p.apps.sam.0', 'qube name'],
  ['an application the gateway does not offer', { i2p: { apps: { bob: ['work'] } } }, 'i2p.apps.bob', 'not a known setting'],
  ['SOCKS for a qube that is not a client', { qubes: { clients: ['work'] }, i2p: { apps: { socks: ['work', 'chat'] } } }, 'i2p.apps.socks.1', 'add chat to qubes.clients'],
  ['SOCKS for a qube listed twice', { qubes: { clients: ['work'] }, i2p: { apps: { socks: ['work', 'work'] } } }, 'i2p.apps.socks.1', 'listed twice'],
  ['SOCKS with shared destinations', { qubes: { clients: ['work'] }, i2p: { clientDestinations: 'shared', apps: { socks: ['work'] } } }, 'i2p.apps.socks', 'its own destination'],
  // qubes.clients entries as objects, { name, apps } (issue 22): apps is the same grant as i2p.apps.<APP>.
  ['client object without a name', { qubes: { clients: [{ apps: ['sam'] }] } }, 'qubes.clients.0.name', 'is missing'],
  ['client object without a name: the fix', { qubes: { clients: ['work', { apps: ['socks'] }] } }, 'qubes.clients.1.name', '{ name: work, apps: [sam] }'],
  ['client object with an unknown key', { qubes: { clients: [{ name: 'work', app: ['sam'] }] } }, 'qubes.clients.0.app', 'Did you mean "apps"'],
  ['client object with an unknown key: the known ones', { qubes: { clients: [{ name: 'work', netvm: 'x' }] } }, 'qubes.clients.0.netvm', 'use one of: name, apps'],
  ['client object granting an unknown application', { qubes: { clients: [{ name: 'work', apps: ['bob'] }] } }, 'qubes.clients.0.apps.0', `use one of ${I2P_APPS.join(', ')}`],
  ['client object with apps not a list', { qubes: { clients: [{ name: 'work', apps: 'sam' }] } }, 'qubes.clients.0.apps', 'not a list'],
  ['client object with a bad name', { qubes: { clients: [{ name: 'x;reboot', apps: ['sam'] }] } }, 'qubes.clients.0.name', 'qube name'],
  ['client object with a name as a number', { qubes: { clients: [{ name: 12 }] } }, 'qubes.clients.0.name', 'text'],
  ['client entry neither a name nor a mapping', { qubes: { clients: [['work']] } }, 'qubes.clients.0', 'neither a qube name nor a mapping'],
  ['client as a name and as an object', { qubes: { clients: ['work', { name: 'work', apps: ['sam'] }] } }, 'qubes.clients.1.name', 'listed twice (also at qubes.clients.0)'],
  ['client as an object and as a name', { qubes: { clients: [{ name: 'work', apps: ['sam'] }, 'work'] } }, 'qubes.clients.1', 'also at qubes.clients.0.name'],
  ['client as two objects', { qubes: { clients: [{ name: 'work', apps: ['sam'] }, { name: 'work', apps: ['socks'] }] } }, 'qubes.clients.1.name', 'list each client qube once'],
  ['client object is the gateway', { qubes: { clients: [{ name: 'sys-i2p', apps: ['socks'] }] } }, 'qubes.clients.0.name', 'cannot be a client'],
  ['SAM granted to two client objects', { qubes: { clients: [{ name: 'torrents', apps: ['sam'] }, { name: 'work', apps: ['sam'] }] } }, 'qubes.clients.1.apps.0', 'finds sessions by their ID across all its clients'],
  ['SAM granted to two client objects: the fix', { qubes: { clients: [{ name: 'torrents', apps: ['sam'] }, { name: 'work', apps: ['sam'] }] } }, 'qubes.clients.1.apps.0', 'remove "sam" from qubes.clients.1.apps'],
  ['SAM in i2p.apps and in a second qube\'s object', { qubes: { clients: ['torrents', { name: 'work', apps: ['sam'] }] }, i2p: { apps: { sam: ['torrents'] } } }, 'qubes.clients.1.apps.0', 'a second qube for SAM'],
  ['I2CP in an object and in i2p.apps for a second qube', { qubes: { clients: [{ name: 'a', apps: ['i2cp'] }, 'b'] }, i2p: { apps: { i2cp: ['b'] } } }, 'qubes.clients.0.apps.0', 'a second qube for I2CP (the first, b, at i2p.apps.i2cp.0)'],
  ['SAM in a client object with shared destinations', { qubes: { clients: [{ name: 'work', apps: ['sam'] }] }, i2p: { clientDestinations: 'shared' } }, 'qubes.clients.0.apps.0', 'needs router i2pd with i2p.clientDestinations: per-client'],
  ['SAM in a client object with shared destinations: the fix', { qubes: { clients: [{ name: 'work', apps: ['sam'] }] }, i2p: { clientDestinations: 'shared' } }, 'qubes.clients.0.apps.0', 'or remove "sam" from qubes.clients.0.apps'],
  ['SOCKS in a client object with the Java router', { qubes: { clients: ['chat', { name: 'work', apps: ['i2cp', 'socks'] }] }, i2p: { router: 'i2p', keyring: 'k.gpg' } }, 'qubes.clients.1.apps.1', 'its own destination'],
  ['SOCKS in i2p.apps and an object with shared: the fix names both', { qubes: { clients: ['chat', { name: 'work', apps: ['socks'] }] }, i2p: { clientDestinations: 'shared', apps: { socks: ['chat'] } } }, 'i2p.apps.socks', 'remove i2p.apps.socks and "socks" from qubes.clients.1.apps'],
  ['the same grant in i2p.apps and a client object', { qubes: { clients: [{ name: 'work', apps: ['socks'] }] }, i2p: { apps: { socks: ['work'] } } }, 'qubes.clients.0.apps.0', 'listed twice for SOCKS (also at i2p.apps.socks.0)'],
  ['the same application twice in one client object', { qubes: { clients: [{ name: 'work', apps: ['sam', 'sam'] }] } }, 'qubes.clients.0.apps.1', 'remove "sam" from qubes.clients.0.apps'],
  ['a client object\'s apps longer than the applications', { qubes: { clients: [{ name: 'work', apps: [...I2P_APPS, I2P_APPS[0]] }] } }, 'qubes.clients.0.apps', 'at most once'],
  ['published qube is also a client object', { qubes: { clients: [{ name: 'webapp', apps: ['socks'] }] }, publish: [{ name: 'wiki', qube: 'webapp', port: 80 }] }, 'publish.0.qube', 'Fix: remove webapp from qubes.clients'],
  // IRC per client qube (issue 23): the router's one IRC tunnel for all clients is gone.
  ['IRC exposed to every client (the former form)', { i2p: { expose: { irc: true } } }, 'i2p.expose.irc', 'i2p.apps.irc: ['],
  ['IRC exposed to every client: the reason', { i2p: { expose: { irc: true } } }, 'i2p.expose.irc', 'one I2P identity for all'],
  ['IRC for a qube that is not a client', { qubes: { clients: ['work'] }, i2p: { apps: { irc: ['work', 'chat'] } } }, 'i2p.apps.irc.1', 'add chat to qubes.clients'],
  ['IRC for a qube listed twice', { qubes: { clients: ['chat'] }, i2p: { apps: { irc: ['chat', 'chat'] } } }, 'i2p.apps.irc.1', 'listed twice'],
  ['IRC with shared destinations', { qubes: { clients: ['chat'] }, i2p: { clientDestinations: 'shared', apps: { irc: ['chat'] } } }, 'i2p.apps.irc', 'its own destination'],
  ['IRC with the Java router', { qubes: { clients: ['chat'] }, i2p: { router: 'i2p', keyring: 'k.gpg', apps: { irc: ['chat'] } } }, 'i2p.apps.irc', 'needs router i2pd'],
  ['IRC server without a port', { i2p: { ircServer: 'irc.ilita.i2p' } }, 'i2p.ircServer', 'HOST.i2p:PORT'],
  ['IRC server on the clear net', { i2p: { ircServer: 'irc.libera.chat:6667' } }, 'i2p.ircServer', '.i2p host or b32 address'],
  ['IRC server port 0', { i2p: { ircServer: 'irc.ilita.i2p:0' } }, 'i2p.ircServer', 'HOST.i2p:PORT'],
  ['IRC server port above 65535', { i2p: { ircServer: 'irc.ilita.i2p:70000' } }, 'i2p.ircServer', 'above 65535'],
  ['IRC server a short .b32.i2p name', { i2p: { ircServer: 'abc.b32.i2p:6667' } }, 'i2p.ircServer', 'not a b32 address'],
  ['IRC server with an ini line', { i2p: { ircServer: 'irc.ilita.i2p:6667\nkeys = router.keys' } }, 'i2p.ircServer', 'HOST.i2p:PORT'],
  ['IRC server with a comment sign', { i2p: { ircServer: 'irc.ilita.i2p#x:6667' } }, 'i2p.ircServer', 'HOST.i2p:PORT'],
  ['IRC server in upper case', { i2p: { ircServer: 'IRC.ILITA.I2P:6667' } }, 'i2p.ircServer', 'lower case'],
  ['IRC server as a number', { i2p: { ircServer: 6667 } }, 'i2p.ircServer', 'text'],
  ['IRC in a client object with shared destinations', { qubes: { clients: [{ name: 'chat', apps: ['irc'] }] }, i2p: { clientDestinations: 'shared' } }, 'qubes.clients.0.apps.0', 'or remove "irc" from qubes.clients.0.apps'],
  ['version with hyphen', { package: { version: '1.0-1' } }, 'package.version', 'package version'],
  ['version with shell', { package: { version: '1$(id)' } }, 'package.version', 'package version'],
  ['maintainer without mail', { package: { maintainer: 'Someone' } }, 'package.maintainer', '<address@example.org>'],
  ['maintainer with quote', { package: { maintainer: "O'Brien <o@example.org>" } }, 'package.maintainer', 'Full Name'],
  ['release zero', { package: { release: 0 } }, 'package.release', '1 or more'],
  ['typo at top level', { tor_: {} }, 'tor_', 'Did you mean "tor"'],
  ['typo in a section', { qubes: { gatway: 'x' } }, 'qubes.gatway', 'Did you mean "gateway"'],
  ['section not a mapping', { qubes: 'sys-i2p' }, 'qubes', 'not a mapping'],
  ['publish not a list', { publish: { name: 'wiki' } }, 'publish', 'not a list'],
  ['published service without a qube', { publish: [{ name: 'wiki', port: 8080 }] }, 'publish.0.qube', 'text'],
  ['published service without a port', { publish: [{ name: 'wiki', qube: 'webapp' }] }, 'publish.0.port', 'whole number'],
  ['published service with an unknown key', { publish: [{ name: 'wiki', qube: 'webapp', port: 80, host: 'x' }] }, 'publish.0.host', 'not a known setting'],
  ['published port zero', { publish: [{ name: 'wiki', qube: 'webapp', port: 0 }] }, 'publish.0.port', '1 to 65535'],
  ['published port as text', { publish: [{ name: 'wiki', qube: 'webapp', port: '8080' }] }, 'publish.0.port', 'whole number'],
  ['published name with a space', { publish: [{ name: 'my wiki', qube: 'webapp', port: 80 }] }, 'publish.0.name', 'service name'],
  ['published name starting with -', { publish: [{ name: '-wiki', qube: 'webapp', port: 80 }] }, 'publish.0.name', 'not first'],
  ['published name too long', { publish: [{ name: 'w'.repeat(33), qube: 'webapp', port: 80 }] }, 'publish.0.name', 'at most 32'],
  ['published name twice', { publish: [{ name: 'wiki', qube: 'a', port: 80 }, { name: 'wiki', qube: 'b', port: 80 }] }, 'publish.1.name', 'also publish.0.name'],
  ['published qube is the gateway', { publish: [{ name: 'wiki', qube: 'sys-i2p', port: 80 }] }, 'publish.0.qube', 'qubes.gateway'],
  ['published qube is the netvm', { publish: [{ name: 'wiki', qube: 'sys-firewall', port: 80 }] }, 'publish.0.qube', 'qubes.netvm'],
  ['published qube is the template', { publish: [{ name: 'wiki', qube: 'debian-13-i2p', port: 80 }] }, 'publish.0.qube', 'qubes.template'],
  ['published qube is the source template', { publish: [{ name: 'wiki', qube: 'debian-13-minimal', port: 80 }] }, 'publish.0.qube', 'qubes.sourceTemplate'],
  ['published qube is also a client', { qubes: { clients: ['work', 'webapp'] }, publish: [{ name: 'wiki', qube: 'webapp', port: 80 }] }, 'publish.0.qube', 'Fix: remove webapp from qubes.clients'],
  ['published qube dom0', { publish: [{ name: 'wiki', qube: 'dom0', port: 80 }] }, 'publish.0.qube', 'reserves'],
  ['published qube and port twice', { publish: [{ name: 'a', qube: 'webapp', port: 80 }, { name: 'b', qube: 'webapp', port: 80, i2p: false, onion: true }] }, 'publish.1.port', 'already published as publish.0'],
  ['published as nothing', { publish: [{ name: 'wiki', qube: 'webapp', port: 80, i2p: false }] }, 'publish.0.i2p', 'nothing would be published'],
  ['onion with Tor off', { tor: { enabled: false }, publish: [{ name: 'wiki', qube: 'webapp', port: 80, onion: true }] }, 'publish.0.onion', 'tor.enabled'],
  ['onion as a string', { publish: [{ name: 'wiki', qube: 'webapp', port: 80, onion: 'yes' }] }, 'publish.0.onion', 'true or false'],
  ['I2P site with the Java router', { i2p: { router: 'i2p', keyring: 'k.gpg' }, publish: [{ name: 'wiki', qube: 'webapp', port: 80 }] }, 'publish.0.i2p', 'i2p.router: i2pd'],
  ['too many published services', { publish: Array.from({ length: 33 }, (_, i) => ({ name: `s${i}`, qube: 'webapp', port: 1000 + i })) }, 'publish', 'at most 32'],
  ['tinyproxy on a published listener', { tinyproxy: { port: 28080 }, publish: [{ name: 'wiki', qube: 'webapp', port: 80 }] }, 'tinyproxy.port', 'publish.0'],
  ['Tor on a published listener', { tor: { dnsPort: 28081 }, publish: [{ name: 'a', qube: 'webapp', port: 80 }, { name: 'b', qube: 'webapp', port: 81 }] }, 'tor.dnsPort', 'publish.1'],
];

describe('bad configs', () => {
  it('has at least 30 cases', () => {
    expect(BAD.length).toBeGreaterThanOrEqual(30);
  });

  it.each(BAD)('%s', (_what, value, field, word) => {
    const r = parseConfigValue(value);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const fields = r.issues.map((i) => i.path.join('.'));
    expect(fields).toContain(field);
    const issue = r.issues.find((i) => i.path.join('.') === field)!;
    expect(issue.message).toContain(word);
    expect(issue.message).toMatch(/Fix:/);
  });
});

describe('the IRC server', () => {
  it('without a port gets one error, saying the form, not a port above 65535 as well', () => {
    const r = parseConfigValue({ i2p: { ircServer: 'irc.ilita.i2p' } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => [i.path.join('.'), i.message.split('.')[0]])).toEqual([['i2p.ircServer', 'is not a ']]);
  });
});

describe('hostile values', () => {
  const hostile = ['sys-i2p; rm -rf /', '$(id)', '`id`', 'a\nb', 'a"b', "a'b", 'x'.repeat(1024 * 1024), '../../etc', 'a b', '\u0000', 'ünïcode'];
  for (const v of hostile) {
    const label = JSON.stringify(v.slice(0, 20));
    it(`refuses ${label} wherever a name goes`, () => {
      for (const cfg of [
        { qubes: { gateway: v } },
        { qubes: { template: v } },
        { qubes: { netvm: v } },
        { qubes: { clients: [v] } },
        { qubes: { clients: [{ name: v }] } },
        { qubes: { clients: [{ name: 'work', apps: [v] }] } },
        { qubes: { service: v } },
        { network: { virtualIp: v } },
        { network: { clientRanges: [v] } },
        { package: { version: v } },
        { package: { maintainer: v } },
        { publish: [{ name: v, qube: 'webapp', port: 80 }] },
        { publish: [{ name: 'wiki', qube: v, port: 80 }] },
      ]) {
        const r = parseConfigValue(cfg);
        expect(r.ok, JSON.stringify(cfg).slice(0, 80)).toBe(false);
      }
    });
  }

  // Each would break out of its place: a unit name (@ / \\ .), an i2pd section header ([ ] = ;), a torrc line
  // (space, newline, #), a qrexec policy line (space, tab, + *), a path (/ ..).
  it.each(['wiki@x', 'wiki.socket', 'a/b', '..', 'wi\\x2dki', 'wiki]', '[wiki', 'a=b', 'a;b', 'a#b', 'a\tb', 'a+b', '*', '@anyvm', 'wiki\n[evil]', 'wiki ', ''])(
    'refuses the published service name %j',
    (name) => {
      const r = parseConfigValue({ publish: [{ name, qube: 'webapp', port: 80 }] });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.issues.map((i) => i.path.join('.'))).toContain('publish.0.name');
    },
  );

  it.each(['@anyvm', '@default', '*', 'web app', 'webapp\n', '+8080', '$dispvm', '@dispvm:x', 'a'.repeat(32)])('refuses the published qube %j', (qube) => {
    const r = parseConfigValue({ publish: [{ name: 'wiki', qube, port: 80 }] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path.join('.'))).toContain('publish.0.qube');
  });

  it('refuses YAML aliases (billion laughs) without expanding them', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const r = parseConfigText(lines.join('\n'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.message).toContain('alias');
  });

  it('refuses a file larger than the limit', () => {
    const r = parseConfigText(`# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.message).toContain('KiB');
  });

  it('refuses deep nesting and custom tags', () => {
    expect(parseConfigText(`${'['.repeat(200)}${']'.repeat(200)}`).ok).toBe(false);
    expect(parseConfigText('qubes: !!js/function "x"').ok).toBe(false);
  });

  it('refuses a multi-document file and a top-level list', () => {
    expect(parseConfigText('qubes: {}\n---\ntor: {}\n').ok).toBe(false);
    expect(parseConfigText('- qubes\n').ok).toBe(false);
  });

  it('shows a 1 MB value cut short in the message', () => {
    const src = `qubes:\n  gateway: ${'x'.repeat(1000)}\n`;
    const r = parseConfigText(src);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = formatIssues(r.issues, 'gateway.yaml', src);
    expect(text.length).toBeLessThan(1000);
    expect(text).toContain('(1002 characters)');
  });
});

describe('error wording', () => {
  it('names file, line, column, field, value and fix', () => {
    const src = 'qubes:\n  gateway: "sys i2p"\n';
    const r = parseConfigText(src);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(formatIssues(r.issues, 'gateway.yaml', src)).toBe(
      'gateway.yaml: the gateway config is not valid (1 problem); nothing was written.\n' +
        'gateway.yaml:2:3 qubes.gateway: "sys i2p" is not a valid qube name. Fix: start with a letter and use only letters, digits, "-", "_" and "."',
    );
  });

  it('points at list items', () => {
    const src = 'qubes:\n  clients:\n    - work\n    - "$(id)"\n';
    const r = parseConfigText(src);
    if (r.ok) throw new Error('expected failure');
    expect(formatIssues(r.issues, 'g.yaml', src)).toContain('g.yaml:4:8 qubes.clients.1: "$(id)"');
  });
});

/**
 * systemd sandboxing shared by our daemon units. Each line is one that the daemons (tor, dnsmasq, tinyproxy, and
 * i2pd through our drop-in) were checked to run under; a unit adds what it needs beyond this (capabilities, state dirs).
 */
export const SANDBOX: readonly string[] = [
  '# Sandbox: none of these daemons writes outside its state directory, loads modules or needs devices.',
  'NoNewPrivileges=yes',
  'UMask=0077',
  'ProtectSystem=strict',
  'ProtectHome=yes',
  'PrivateTmp=yes',
  'PrivateDevices=yes',
  'ProtectKernelTunables=yes',
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'RestrictNamespaces=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
  'MemoryDenyWriteExecute=yes',
  'SystemCallArchitectures=native',
  'SystemCallFilter=@system-service',
  // Netlink: the daemons read interface addresses (dnsmasq's bind-dynamic follows vif* as qubes come and go).
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
];

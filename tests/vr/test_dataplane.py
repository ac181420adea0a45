#!/usr/bin/env python3
"""test_dataplane.py: kvmstack-vr's data path, for real, in network
namespaces (tests/vr/vrlib.py draws the topology).  Root.  TAP.

A client namespace on TEST-NET (198.51.100.100 and .101) reaches VIPs on
the router namespace where `kvmstack-vr --stdio` runs; backends sit on the
private L3 (10.0.0.5, 10.0.0.6).  Covers: the full first apply (one
transaction, the maps), addresses and the default route, TCP and UDP
rules, a shifted range, allowedCidr, hairpin, SNAT, a no-op re-apply
(empty batch, identical ruleset), a rebind that takes effect for an
existing UDP flow at once (conntrack flushed), delete, a config nft
refuses (its message; the old ruleset keeps working), repair of a table
changed behind the daemon's back, DHCP with busybox udhcpc (address,
hostname, router, DNS, domain), DNS (local names, forwarding to an
upstream inside the bed), SIGHUP vs restart of dnsmasq, and that a
foreign table is untouched.  Everything is removed at the end, pass or
fail.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vrlib import (BACKEND1, BACKEND2, CLIENT1, CLIENT2, DHCP_IP,  # noqa: E402
                   DHCP_MAC, PUB_SERVER, VR_PRIV, VR_PUB, Topology,
                   base_config, ok, plan, rule, sh, stats)

VIP1 = '198.51.100.10'
VIP2 = '198.51.100.11'


FOREIGN = '''table inet foreign {
    set s { type ipv4_addr; elements = { 192.0.2.1 } }
    chain c {
        type filter hook input priority 10; policy accept;
        ip saddr @s counter
    }
}
'''

UDHCPC_SCRIPT = '''#!/bin/sh
[ "$1" = bound ] || exit 0
{ echo "ip=$ip"; echo "mask=$mask"; echo "router=$router";
  echo "dns=$dns"; echo "domain=$domain"; echo "hostname=$hostname"; } > %s
'''


def dhcp_section(hosts):
    return {'subnet': '10.0.0.0/24', 'gateway': VR_PRIV,
            'domain': 'kvm.test', 'dns': [VR_PRIV],
            'upstreams': [PUB_SERVER], 'hosts': hosts}


HOSTS = [{'mac': DHCP_MAC, 'ip': DHCP_IP, 'hostname': 'vm9'},
         {'mac': '52:54:00:5e:02:05', 'ip': BACKEND1, 'hostname': 'vm5'}]

R_SSH = rule('r-ssh', VIP1, 'tcp', [22, 22], BACKEND1, [22, 22])
R_UDP = rule('r-udp', VIP1, 'udp', [5300, 5300], BACKEND1, [5353, 5353])
R_RANGE = rule('r-range', VIP1, 'tcp', [1000, 1010], BACKEND1, [2000, 2010])
R_CIDR = rule('r-cidr', VIP2, 'tcp', [2222, 2222], BACKEND1, [22, 22],
              CLIENT1 + '/32')


def main():
    t = Topology('kvrt%d' % os.getpid())
    try:
        run(t)
    finally:
        t.destroy()
        left = [ns for ns in sh('ip', 'netns', 'list').stdout.split()
                if ns.startswith(t.prefix)]
        ok(not left, 'teardown: every namespace is gone', left)
    return plan()


def run(t):
    t.create()
    sh('nft', '-f', '-', ns=t.router, input=FOREIGN)
    foreign_before = t.nft('list', 'table', 'inet', 'foreign')
    vr = t.start_vr()
    ok(vr.init.get('kind') == 'init' and vr.init.get('role') == 'vr'
       and vr.init.get('version') == 1,
       'kvmstack-vr says init (role vr, version 1) first', vr.init)

    for ns, addr, ports, name in (
            (t.priv, BACKEND1, [22, 8022] + list(range(2000, 2011)), 'b1'),
            (t.priv, BACKEND2, [22], 'b2'),
            (t.pub, PUB_SERVER, [8080], 'pubsrv')):
        t.server(ns, 'tcp', addr, ports, name)
    t.server(t.priv, 'udp', BACKEND1, [5353], 'b1')
    t.server(t.priv, 'udp', BACKEND2, [5353], 'b2')
    ready = os.path.join(t.tmp, 'dns-ready')
    t.spawn(t.pub, [sys.executable, os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'netutil.py'),
        'serve-dns', PUB_SERVER, '192.0.2.99', ready])

    # -- full apply ---------------------------------------------------------
    cfg1 = base_config(1, [R_SSH, R_UDP, R_RANGE, R_CIDR],
                       dhcp=dhcp_section(HOSTS))
    reply, secs = vr.apply(cfg1)
    st = stats(reply)
    ok(reply.get('result', {}).get('gen') == 1,
       'full apply: reply {"gen":1} in %.0f ms' % (secs * 1000), reply)
    ok(st.get('nftFull') is True and st.get('nftOps') == 13 + 3 + 4,
       'full apply: one transaction built the table with every element '
       '(%s elements)' % st.get('nftOps'), reply)
    table = t.nft('list', 'table', 'ip', 'kvmstack_vr')
    ok('map pf_tcp {' in table and 'map pf_udp {' in table
       and 'type ipv4_addr . inet_service : ipv4_addr . inet_service'
       in table and 'dnat ip to ip daddr . tcp dport map @pf_tcp' in table
       .replace('dnat to', 'dnat ip to'),
       'nft list table ip kvmstack_vr shows the pf_tcp/pf_udp maps and the '
       'map lookup rule', table)
    pf_tcp = t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_tcp')
    ok(pf_tcp.count(' : 10.0.0.5 . ') == 13,
       'pf_tcp has one element per port (1 + 11 + 1)', pf_tcp)
    addrs = sh('ip', '-4', '-o', 'addr', 'show', ns=t.router).stdout
    route = sh('ip', 'route', 'show', 'default', ns=t.router).stdout
    fwd = sh('cat', '/proc/sys/net/ipv4/ip_forward', ns=t.router).stdout
    ok('r-pub    inet %s/24' % VR_PUB in addrs
       and 'r-pub    inet %s/32' % VIP1 in addrs
       and 'r-pub    inet %s/32' % VIP2 in addrs
       and 'r-priv    inet %s/24' % VR_PRIV in addrs
       and 'via 198.51.100.1 dev r-pub' in route and fwd.strip() == '1',
       'NICs found by MAC: addresses, VIPs as /32, default route via the '
       'public gateway, ip_forward on', addrs + route + fwd)

    # -- data path --------------------------------------------------------
    got = t.netutil(t.pub, 'tcp', VIP1, 22, CLIENT1)
    ok(got == 'b1 22 %s' % CLIENT1,
       'TCP: client -> VIP:22 lands on the backend (which sees the '
       'client address)', got)
    got = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40001)
    ok(got == 'b1 5353 %s' % CLIENT1,
       'UDP: a datagram to VIP:5300 reaches backend:5353 and the answer '
       'comes back', got)
    got = [t.netutil(t.pub, 'tcp', VIP1, p, CLIENT1)
           for p in (1000, 1005, 1010, 1011)]
    ok(got[:3] == ['b1 2000 %s' % CLIENT1, 'b1 2005 %s' % CLIENT1,
                   'b1 2010 %s' % CLIENT1] and got[3].startswith('ERR'),
       'shifted range: VIP 1000/1005/1010 -> 2000/2005/2010, 1011 closed',
       got)
    got1 = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT1)
    got2 = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT2)
    got3 = t.netutil(t.pub, 'tcp', VIP1, 22, CLIENT2)
    ok(got1 == 'b1 22 %s' % CLIENT1 and got2 == 'ERR ECONNREFUSED'
       and got3 == 'b1 22 %s' % CLIENT2,
       'allowedCidr %s/32: admits %s, rejects %s (TCP reset); other '
       'rules still admit it' % (CLIENT1, CLIENT1, CLIENT2),
       [got1, got2, got3])
    got = t.netutil(t.priv, 'tcp', VIP1, 22, BACKEND2)
    ok(got == 'b1 22 %s' % VR_PRIV,
       'hairpin: %s -> VIP:22 lands on %s (masqueraded to the router)'
       % (BACKEND2, BACKEND1), got)
    got = t.netutil(t.priv, 'tcp', PUB_SERVER, 8080, BACKEND1)
    ok(got == 'pubsrv 8080 %s' % VR_PUB,
       'SNAT: a backend reaches a public server with the router\'s public '
       'address as source', got)

    # -- idempotence ------------------------------------------------------
    before = t.nft('list', 'ruleset')
    cfg2 = dict(cfg1, gen=2)
    reply, secs = vr.apply(cfg2)
    st = stats(reply)
    after = t.nft('list', 'ruleset')
    ok(reply.get('result', {}).get('gen') == 2 and st.get('nftOps') == 0
       and st.get('batchBytes') == 0 and not st.get('addressesChanged')
       and not st.get('dnsmasqChanged') and before == after,
       'the same config again: empty batch, nothing touched, identical '
       'ruleset (%.1f ms)' % (secs * 1000), reply)

    # -- rebind -----------------------------------------------------------
    first = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40002)
    rebound = [dict(R_SSH, guestIp=BACKEND2), dict(R_UDP, guestIp=BACKEND2),
               R_RANGE, R_CIDR]
    reply, _ = vr.apply(base_config(3, rebound, dhcp=dhcp_section(HOSTS)))
    st = stats(reply)
    again = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40002)
    tcp = t.netutil(t.pub, 'tcp', VIP1, 22, CLIENT1)
    ok(first.startswith('b1 ') and again == 'b2 5353 %s' % CLIENT1
       and tcp == 'b2 22 %s' % CLIENT1 and st.get('nftOps') == 4
       and st.get('conntrackFlushed', 0) >= 1,
       'rebind to %s: 4 element changes, conntrack flushed (%s), the same '
       'UDP flow and a new TCP connection land on the new target at once'
       % (BACKEND2, st.get('conntrackFlushed')), [first, again, tcp, reply])

    # -- delete -----------------------------------------------------------
    cfg4 = base_config(4, [dict(R_UDP, guestIp=BACKEND2), R_RANGE, R_CIDR],
                       dhcp=dhcp_section(HOSTS))
    reply, _ = vr.apply(cfg4)
    st = stats(reply)
    got = t.netutil(t.pub, 'tcp', VIP1, 22, CLIENT1)
    pf_tcp = t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_tcp')
    ok(st.get('nftOps') == 1 and got.startswith('ERR')
       and '%s . 22 :' % VIP1 not in pf_tcp,
       'delete: one element removed, VIP:22 no longer forwarded (%s)' % got,
       [reply, pf_tcp])

    # -- a batch nft refuses ---------------------------------------------
    before = t.nft('list', 'ruleset')
    bad = base_config(5, cfg4['portForwarding'], dhcp=dhcp_section(HOSTS))
    bad['snat'].append({'source': '10.0.0.0/16', 'to': VR_PUB})
    reply, _ = vr.apply(bad)
    after = t.nft('list', 'ruleset')
    got = t.netutil(t.pub, 'tcp', VIP1, 1005, CLIENT1)
    msg = reply.get('message', '')
    ok(reply.get('problem') and 'nft' in msg
       and 'conflicting intervals' in msg and before == after
       and got == 'b1 2005 %s' % CLIENT1,
       'overlapping SNAT sources: the call fails with nft\'s message, the '
       'old ruleset is unchanged and keeps working', [reply, got])
    reply, _ = vr.apply(dict(cfg4, gen=6))
    ok(reply.get('result', {}).get('gen') == 6
       and stats(reply).get('nftOps') == 0,
       'after the refused batch the committed state is the old one (the '
       'old config again is an empty batch)', reply)

    # -- drift behind our back ---------------------------------------------
    t.nft('delete', 'element', 'ip', 'kvmstack_vr', 'pf_tcp',
          '{ %s . 1000 }' % VIP1)
    cfg7 = base_config(7, [dict(R_UDP, guestIp=BACKEND2), R_CIDR],
                       dhcp=dhcp_section(HOSTS))
    reply, _ = vr.apply(cfg7)
    st = stats(reply)
    got = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT1)
    pf_tcp = t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_tcp')
    ok(reply.get('result', {}).get('gen') == 7 and st.get('nftFull')
       and got == 'b1 22 %s' % CLIENT1 and ' . 1005 ' not in pf_tcp,
       'an element deleted behind the daemon\'s back: the refused delta is '
       'retried as one full rebuild', [reply, got, pf_tcp])

    # -- DHCP and DNS -----------------------------------------------------
    out = os.path.join(t.tmp, 'lease.env')
    script = os.path.join(t.tmp, 'udhcpc.sh')
    with open(script, 'w') as f:
        f.write(UDHCPC_SCRIPT % out)
    os.chmod(script, 0o755)
    p = sh('busybox', 'udhcpc', '-i', 'd0', '-n', '-q', '-f', '-t', '5',
           '-T', '1', '-s', script,
           ns=t.dhcp, check=False, timeout=30)
    lease = open(out).read() if os.path.exists(out) else ''
    env = dict(line.split('=', 1) for line in lease.splitlines()
               if '=' in line)
    ok(env.get('ip') == DHCP_IP and env.get('hostname') == 'vm9'
       and env.get('router') == VR_PRIV and env.get('dns') == VR_PRIV
       and env.get('domain') == 'kvm.test' and env.get('mask') == '24',
       'DHCP: busybox udhcpc gets %s, hostname vm9, router, DNS and domain '
       'from dnsmasq' % DHCP_IP, lease + p.stdout + p.stderr)
    got = [t.netutil(t.priv, 'dns', VR_PRIV, n)
           for n in ('vm9.kvm.test', 'vm5', 'www.example.test')]
    ok(got == [DHCP_IP, BACKEND1, '192.0.2.99'],
       'DNS on the private address: local names (with and without the '
       'domain) and forwarding to the configured upstream', got)
    pidfile = os.path.join(t.run_dir, 'dnsmasq.pid')
    pid1 = open(pidfile).read().strip()
    hosts2 = HOSTS + [{'mac': '52:54:00:5e:02:0a', 'ip': '10.0.0.10',
                       'hostname': 'vm10'}]
    reply, _ = vr.apply(base_config(8, cfg7['portForwarding'],
                                    dhcp=dhcp_section(hosts2)))
    time.sleep(0.3)
    pid2 = open(pidfile).read().strip()
    got = t.netutil(t.priv, 'dns', VR_PRIV, 'vm10.kvm.test')
    ok(stats(reply).get('dnsmasqChanged') and pid1 == pid2
       and stats(reply).get('nftOps') == 0 and got == '10.0.0.10',
       'a new static host: dnsmasq re-reads its hosts on SIGHUP (same pid), '
       'no nft change; the name resolves', [reply, pid1, pid2, got])
    dh = dhcp_section(hosts2)
    dh['domain'] = 'other.test'
    reply, _ = vr.apply(base_config(9, cfg7['portForwarding'], dhcp=dh))
    pid3 = open(pidfile).read().strip()
    got = t.netutil(t.priv, 'dns', VR_PRIV, 'vm10.other.test')
    ok(reply.get('result') and pid3 != pid2 and got == '10.0.0.10',
       'a new domain: dnsmasq restarted with the new config', [reply, got])

    # -- everything off ---------------------------------------------------
    reply, _ = vr.apply(base_config(10, [], dhcp=None, snat=False))
    pf = t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_tcp') + \
        t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_udp')
    got = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT1)
    procs = [open('/proc/%s/comm' % pid).read().strip()
             for pid in sh('ip', 'netns', 'pids', t.router).stdout.split()
             if os.path.exists('/proc/%s/comm' % pid)]
    ok(reply.get('result') and 'elements' not in pf
       and got.startswith('ERR') and 'dnsmasq' not in procs,
       'no rules, no DHCP: maps empty, the port is closed, dnsmasq stopped',
       [reply, pf, got, procs])

    foreign_after = t.nft('list', 'table', 'inet', 'foreign')
    tables = t.nft('list', 'tables')
    ok(foreign_before == foreign_after
       and sorted(tables.split('\n')) == sorted(
           ['table inet foreign', 'table ip kvmstack_vr', '']),
       'a foreign table is untouched; kvmstack-vr owns only table ip '
       'kvmstack_vr', [foreign_before, foreign_after, tables])


if __name__ == '__main__':
    sys.exit(main())

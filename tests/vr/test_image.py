#!/usr/bin/env python3
"""test_image.py: the real appliance: build/images/kvmstack-vr.qcow2 (with
build/kvmstack-vr inside, `make images`) booted under QEMU (TCG) with its
virtio-serial channel on a unix socket, as the agent sees it, and its two
NICs on taps that sit in a "public" and a "private" namespace.  Root.
TAP.  Skipped when the image is missing or older than build/kvmstack-vr.

Checks what only the appliance shows: VR-READY on the console, init over
virtio-serial and again after every reconnection (also an immediate one),
the NICs found by MAC in the guest, the whole table accepted by the
guest's kernel (Debian 12's 6.1: reject in prerouting, concatenated
interval sets), and the data path through the VM: DNAT, allowedCidr,
rebind with the conntrack flush, SNAT, DHCP, a delta.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vrlib import (BACKEND1, BACKEND2, CLIENT1, CLIENT2, PUB_SERVER,  # noqa: E402
                   REPO, VR_PUB, base_config, ok, plan, rule, sh,
                   vr_binary)

BOOT_TIMEOUT = 90
VR_PUB_MAC = '52:54:00:6e:01:01'
VR_PRIV_MAC = '52:54:00:6e:02:01'
DH_MAC = '52:54:00:6e:02:09'
VIP = '198.51.100.10'


class Chan:
    """The host end of the VR's virtio-serial port (QEMU's socket)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.buf = b''
        self.next_id = 1

    def frame(self, timeout=20):
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return None
            if not d:
                return None
            self.buf += d
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def send(self, msg):
        self.s.sendall(json.dumps(msg).encode() + b'\n')

    def call(self, method, params, timeout=60):
        i = self.next_id
        self.next_id += 1
        self.send({'kind': 'call', 'id': i, 'method': method,
                   'params': params})
        while True:
            f = self.frame(timeout)
            if f is None or (f.get('kind') == 'reply' and f.get('id') == i):
                return f or {}

    def close(self):
        self.s.close()


def config(gen, rules, hosts=()):
    cfg = base_config(gen, rules, dhcp={
        'subnet': '10.0.0.0/24', 'gateway': '10.0.0.1', 'domain': 'vr.test',
        'dns': [], 'upstreams': [], 'hosts': list(hosts)})
    cfg['interfaces'][0]['mac'] = VR_PUB_MAC
    cfg['interfaces'][1]['mac'] = VR_PRIV_MAC
    return cfg


def main():
    image = REPO / 'build' / 'images' / 'kvmstack-vr.qcow2'
    if os.environ.get('KVMSTACK_BUILD', 'build') != 'build':
        image = REPO / os.environ['KVMSTACK_BUILD'] / 'images' / \
            'kvmstack-vr.qcow2'
    binary = vr_binary()
    if not image.exists() or image.stat().st_mtime < os.stat(binary).st_mtime:
        print('ok 1 - appliance # SKIP %s missing or older than %s '
              '(make images)' % (image, binary))
        print('1..1')
        return 0
    prefix = 'kvri%d' % os.getpid()
    nss = {k: '%s-%s' % (prefix, k) for k in ('q', 'pub', 'priv')}
    work = tempfile.mkdtemp(prefix='kvmstack-vr-image.')
    procs = []
    try:
        run(image, nss, work, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for ns in nss.values():
            for pid in sh('ip', 'netns', 'pids', ns, check=False).stdout \
                    .split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
        subprocess.run(['rm', '-rf', work])
        left = [ns for ns in sh('ip', 'netns', 'list').stdout.split()
                if ns.startswith(prefix)]
        ok(not left, 'teardown: QEMU and every namespace are gone', left)
    return plan()


def spawn(procs, argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
    procs.append(p)
    return p


def server(procs, work, ns, kind, addr, ports, name):
    ready = os.path.join(work, 'ready-%s-%s-%s' % (kind, addr, ports[0]))
    spawn(procs, ['ip', 'netns', 'exec', ns, sys.executable,
                  os.path.join(os.path.dirname(__file__), 'netutil.py'),
                  'serve-' + kind, addr, ','.join(map(str, ports)), name,
                  ready], stdout=subprocess.DEVNULL,
          stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.02)


def netutil(ns, *args):
    p = sh(sys.executable, os.path.join(os.path.dirname(__file__),
                                        'netutil.py'),
           *[str(a) for a in args], ns=ns, check=False, timeout=30)
    return p.stdout.strip() or 'ERR ' + p.stderr.strip()


def run(image, nss, work, procs):
    for ns in nss.values():
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    overlay = os.path.join(work, 'vr.qcow2')
    sh('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b',
       str(image), overlay)
    serial = os.path.join(work, 'serial.log')
    chan = os.path.join(work, 'chan')
    t0 = time.monotonic()
    q = spawn(procs, [
        'ip', 'netns', 'exec', nss['q'], 'qemu-system-x86_64',
        '-name', 'kvmstack-vr-test', '-machine', 'pc,accel=tcg', '-m', '256',
        '-smp', '1', '-display', 'none', '-no-user-config', '-nodefaults',
        '-serial', 'file:' + serial,
        '-drive', 'file=%s,if=virtio,format=qcow2' % overlay,
        '-netdev', 'tap,id=n0,ifname=tpub,script=no,downscript=no',
        '-device', 'virtio-net-pci,netdev=n0,mac=' + VR_PUB_MAC,
        '-netdev', 'tap,id=n1,ifname=tpriv,script=no,downscript=no',
        '-device', 'virtio-net-pci,netdev=n1,mac=' + VR_PRIV_MAC,
        '-device', 'virtio-serial',
        '-chardev', 'socket,id=ch0,path=%s,server=on,wait=off' % chan,
        '-device', 'virtserialport,chardev=ch0,name=org.kvmstack.vr.0'],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, 'qemu.err'), 'w'))
    # The taps go to the client and backend namespaces (QEMU keeps its
    # file descriptors), so the VM is the only way between them.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        links = sh('ip', '-n', nss['q'], '-o', 'link', check=False).stdout
        if 'tpub' in links and 'tpriv' in links:
            break
        time.sleep(0.05)
    sh('ip', '-n', nss['q'], 'link', 'set', 'tpub', 'netns', nss['pub'])
    sh('ip', '-n', nss['q'], 'link', 'set', 'tpriv', 'netns', nss['priv'])
    sh('ip', '-n', nss['priv'], 'link', 'set', 'tpriv', 'address', DH_MAC)
    for ns, dev in ((nss['pub'], 'tpub'), (nss['priv'], 'tpriv')):
        sh('ip', '-n', ns, 'link', 'set', dev, 'up')
    for a in (CLIENT1, CLIENT2, PUB_SERVER):
        sh('ip', '-n', nss['pub'], 'addr', 'add', a + '/24', 'dev', 'tpub')

    def console():
        try:
            return open(serial, errors='replace').read()
        except FileNotFoundError:
            return ''
    while 'VR-READY' not in console():
        if q.poll() is not None or time.monotonic() - t0 > BOOT_TIMEOUT:
            break
        time.sleep(0.1)
    if not ok('VR-READY' in console(),
              'the appliance boots to VR-READY (kvmstack-vr started by its '
              'init) in %.1f s' % (time.monotonic() - t0), console()):
        return

    c = Chan(chan)
    init = c.frame(20)
    ok(init and init.get('kind') == 'init' and init.get('role') == 'vr',
       'init over virtio-serial when the host side connects', init)

    # DHCP first: the private namespace has no address yet.
    cfg = config(1, [rule('ssh', VIP, 'tcp', [22, 22], BACKEND1, [22, 22]),
                     rule('cidr', VIP, 'tcp', [2222, 2222], BACKEND1,
                          [22, 22], CLIENT1 + '/32'),
                     rule('dns', VIP, 'udp', [5300, 5300], BACKEND1,
                          [5353, 5353])],
                 hosts=[{'mac': DH_MAC, 'ip': BACKEND1, 'hostname': 'vm5'}])
    reply = c.call('vr.apply', {'uuid': 'x', 'config': cfg}, 120)
    st = reply.get('result', {}).get('stats', {})
    ok(st.get('nftFull') and reply['result'].get('gen') == 1,
       'the guest kernel accepts the whole table in one transaction (%.0f ms'
       ' in nft)' % (st.get('nftUsec', 0) / 1000), [reply, console()])

    out = os.path.join(work, 'lease.env')
    script = os.path.join(work, 'udhcpc.sh')
    with open(script, 'w') as f:
        f.write('#!/bin/sh\n[ "$1" = bound ] || exit 0\n'
                'ip addr add $ip/$mask dev $interface\n'
                'ip route add default via $router\n'
                'echo "ip=$ip hostname=$hostname router=$router" > %s\n'
                % out)
    os.chmod(script, 0o755)
    sh('busybox', 'udhcpc', '-i', 'tpriv', '-n', '-q', '-f', '-t', '10',
       '-T', '1', '-s', script, ns=nss['priv'], check=False, timeout=60)
    lease = open(out).read().strip() if os.path.exists(out) else ''
    ok(lease == 'ip=%s hostname=vm5 router=10.0.0.1' % BACKEND1,
       'DHCP from the appliance\'s dnsmasq: address, hostname, router',
       lease)
    sh('ip', '-n', nss['priv'], 'addr', 'add', BACKEND2 + '/24', 'dev',
       'tpriv', check=False)
    server(procs, work, nss['priv'], 'tcp', BACKEND1, [22], 'b1')
    server(procs, work, nss['priv'], 'tcp', BACKEND2, [22], 'b2')
    server(procs, work, nss['priv'], 'udp', BACKEND1, [5353], 'b1')
    server(procs, work, nss['priv'], 'udp', BACKEND2, [5353], 'b2')
    server(procs, work, nss['pub'], 'tcp', PUB_SERVER, [8080], 'pubsrv')

    got = [netutil(nss['pub'], 'tcp', VIP, 22, CLIENT1),
           netutil(nss['pub'], 'tcp', VIP, 2222, CLIENT1),
           netutil(nss['pub'], 'tcp', VIP, 2222, CLIENT2),
           netutil(nss['priv'], 'tcp', PUB_SERVER, 8080, BACKEND1)]
    ok(got == ['b1 22 %s' % CLIENT1, 'b1 22 %s' % CLIENT1,
               'ERR ECONNREFUSED', 'pubsrv 8080 %s' % VR_PUB],
       'through the VM: DNAT, allowedCidr (reset for the other client), '
       'SNAT', [got, console()[-3000:]])

    first = netutil(nss['pub'], 'udp', VIP, 5300, CLIENT1, 40100)
    cfg = config(2, [rule('ssh', VIP, 'tcp', [22, 22], BACKEND2, [22, 22]),
                     rule('dns', VIP, 'udp', [5300, 5300], BACKEND2,
                          [5353, 5353])],
                 hosts=[{'mac': DH_MAC, 'ip': BACKEND1, 'hostname': 'vm5'}])
    reply = c.call('vr.apply', cfg, 60)
    st = reply.get('result', {}).get('stats', {})
    again = netutil(nss['pub'], 'udp', VIP, 5300, CLIENT1, 40100)
    tcp = netutil(nss['pub'], 'tcp', VIP, 22, CLIENT1)
    gone = netutil(nss['pub'], 'tcp', VIP, 2222, CLIENT1)
    ok(first.startswith('b1') and again.startswith('b2 ')
       and tcp.startswith('b2 ') and gone.startswith('ERR')
       and st.get('conntrackFlushed', 0) >= 1,
       'rebind and delete in one apply: the same UDP flow moves at once '
       '(conntrack flushed), the deleted port is closed',
       [first, again, tcp, gone, reply])

    # A delta, as mgmt sends one rule's change, through the port.
    reply = c.call('vr.apply', {'uuid': 'x', 'delta': {
        'gen': 3, 'baseGen': 2,
        'portForwardingAdd': [rule('cidr', VIP, 'tcp', [2222, 2222],
                                   BACKEND2, [22, 22])],
        'portForwardingDel': ['dns']}}, 60)
    st = reply.get('result', {}).get('stats', {})
    tcp = netutil(nss['pub'], 'tcp', VIP, 2222, CLIENT1)
    udp = netutil(nss['pub'], 'udp', VIP, 5300, CLIENT1, 40101)
    gap = c.call('vr.apply', {'uuid': 'x', 'delta': {'gen': 9,
                                                      'baseGen': 1}}, 60)
    ok(reply.get('result', {}).get('gen') == 3 and st.get('delta')
       and st.get('nftOps') == 2 and tcp.startswith('b2 ')
       and udp.startswith('ERR') and gap.get('problem') == 'conflict',
       'a delta (one rule added, one removed) in one transaction of 2 '
       'elements; a delta on another gen is refused (%s)'
       % gap.get('message'), [reply, tcp, udp, gap])

    # The agent's way: wait for init; a connection that has not seen one
    # after a second gets a probe ping (hostagent/vr.c).  A host side that
    # closes and reconnects at once can go unseen by the guest (no POLLHUP
    # between the polls): then the probe's pong is the answer.
    results = []
    for delay in (0.5, 0.0):
        c.close()
        time.sleep(delay)
        c = Chan(chan)
        f = c.frame(1.5)
        if f and f.get('kind') == 'init':
            results.append('init')
            continue
        c.send({'kind': 'ping', 'id': 999})
        f = c.frame(10)
        results.append('pong' if f == {'kind': 'pong', 'id': 999} else f)
    reply = c.call('vr.status', {}, 20)
    ok(results[0] == 'init' and results[1] in ('init', 'pong')
       and reply.get('result') == {'gen': 3},
       'the host side reconnects: init again after 0.5 s; at once: %s; the '
       'state survives' % (results[1] if results[1] == 'init'
                           else 'answers the agent\'s probe'),
       [results, reply])
    c.close()


if __name__ == '__main__':
    sys.exit(main())

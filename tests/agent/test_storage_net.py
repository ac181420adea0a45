#!/usr/bin/env python3
"""test_storage_net.py: the agent's storage and network methods, driven
through the real `kvmstack-agent --stdio` inside test-bed hosts
(tests/bed), as mgmt would drive them.  Root only; prints TAP.

    python3 tests/agent/test_storage_net.py [--only GLOB] [--list]

Cases (GLOB matches a case name, or 'case: item'):
  storage      storage.mount/capacity/unmount with an NFS stand-in
  image        image.check (accept + every refusal), image.commit
  volume       volume.create (qcow2 overlay), volume.delete
  net-args     parameter checks of net.bridge.*
  net-novlan   L2NoVlanNetwork over a veth, live TCP connection kept
  net-vlan     L2VlanNetwork: not-supported here, nothing created
  net-vxlan    VxlanNetwork between two hosts, ping over VXLAN, peers, remove

Stand-ins (this machine's kernel has no NFS client and no 802.1q):
  * NFS: the agent's real mount code path runs; only the mount command is
    replaced through the host's private /etc/kvmstack/agent.conf by
    `mount --bind <shared dir>/{server}{export} {path}`, a directory under
    /tmp shared by every bed host, one per export.
  * VLAN: expected to fail with not-supported and to create nothing; L2
    isolation is tested with VXLAN instead.
Network rule: every address is inside namespaces this test creates (the
bed hosts, one peer namespace, and a veth between the two hosts' namespaces
in 10.250.200.0/24); no packet leaves the machine; everything is removed
at the end, pass or fail.
"""

import argparse
import ctypes
import fnmatch
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'bed'))

import bed as bedmod  # noqa: E402
from agentproc import Agent, agent_binary  # noqa: E402

ROOT = '/var/lib/kvmstack'
CASES = []


def case(fn):
    CASES.append((fn.__name__[5:].replace('_', '-'), fn))
    return fn


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        print('%sok %d - %s' % ('' if cond else 'not ', self.n, desc),
              flush=True)
        if not cond:
            self.failed += 1
            if diag:
                for line in str(diag).strip().splitlines()[-25:]:
                    print('#   ' + line, flush=True)
        return bool(cond)

    def note(self, msg):
        for line in str(msg).splitlines():
            print('# ' + line, flush=True)


class Ctx:
    """What every case gets: the TAP stream and the lazily built bed."""

    def __init__(self, tap):
        self.tap = tap
        self.name = ''
        self.bed = None
        self.hosts = {}
        self.agents = {}
        self.tmp = tempfile.mkdtemp(prefix='ksagent-%d-' % os.getpid())
        self.cleanups = []          # callables run at close, last first

    def ok(self, cond, desc, diag=None):
        return self.tap.ok(cond, '%s: %s' % (self.name, desc), diag)

    def problem_is(self, got, want, desc, *needles):
        """Checks a (problem, message) pair: the problem code and that the
        message contains every needle (case-insensitive)."""
        problem, message = got
        good = problem == want and all(
            n.lower() in message.lower() for n in needles)
        return self.ok(good, desc, 'got %s: %s; want %s mentioning %s'
                       % (problem, message, want, needles))

    def host(self, name):
        if self.bed is None:
            os.makedirs('/etc/kvmstack', exist_ok=True)   # bind target
            self.bed = bedmod.Bed()
        if name not in self.hosts:
            self.hosts[name] = self.bed.add_host(
                name, private_dirs=['/etc/kvmstack', ROOT])
        return self.hosts[name]

    def agent(self, name):
        """The long-lived agent of host 'name' (like mgmt's channel)."""
        if name not in self.agents:
            self.agents[name] = Agent(host=self.host(name))
        return self.agents[name]

    def close(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:      # keep cleaning
                self.tap.note('cleanup: %s' % e)
        for a in self.agents.values():
            try:
                a.close()
            except Exception:
                pass
        if self.bed is not None:
            self.bed.close()
        subprocess.run(['umount', '-R', self.tmp], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def root_run(argv, check=True):
    """Runs argv in the root namespace (test set-up: ip netns/ip link)."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError('%s: %s' % (' '.join(argv), r.stderr.strip()))
    return r


def sh(host, cmd, check=True, timeout=30):
    return host.run(cmd, check=check, timeout=timeout)


def write_conf(host, text):
    host.run_argv(['sh', '-c', 'cat > /etc/kvmstack/agent.conf'],
                  input=text)


def mountinfo_count(host, path):
    out = host.run_argv(['cat', '/proc/self/mountinfo']).stdout
    return sum(1 for l in out.splitlines() if l.split()[4] == path)


# ---------------------------------------------------------------- storage

@case
def case_storage(c):
    t = c.tmp
    c.tap.note('NFS stand-in: the kernel has no NFS client, so agent.conf '
               'sets nfs_mount_command to a bind mount of a shared '
               'directory per export; the agent code path is the real one')
    url = '192.0.2.10:/export/ps1'
    export_dir = os.path.join(t, 'nfs', '192.0.2.10', 'export', 'ps1')
    os.makedirs(export_dir)
    conf = ('# kvmstack agent (test bed): NFS stand-in\n'
            'nfs_mount_command = mount --bind %s/nfs/{server}{export} '
            '{path}\n' % t)
    h1 = c.host('host1')
    h2 = c.host('host2')
    write_conf(h1, conf)
    write_conf(h2, conf)
    a1 = c.agent('host1')
    a2 = c.agent('host2')
    ps = uuid.uuid4().hex
    mp = '%s/ps/%s' % (ROOT, ps)

    r = a1.call('storage.mount', {'uuid': ps, 'url': url, 'mountPath': mp})
    st = os.statvfs(export_dir)
    c.ok(r['totalCapacity'] == st.f_blocks * st.f_frsize
         and 0 < r['availableCapacity'] <= r['totalCapacity'],
         'mount reports the capacity of the export (statvfs)', r)
    c.ok(mountinfo_count(h1, mp) == 1, 'mounted once at mountPath')
    with open(os.path.join(export_dir, 'marker'), 'w') as f:
        f.write('from-export')
    c.ok(sh(h1, 'cat %s/marker' % mp).stdout == 'from-export',
         'the export is visible under mountPath')
    r2 = a1.call('storage.mount', {'uuid': ps, 'url': url, 'mountPath': mp})
    c.ok(r2['totalCapacity'] == r['totalCapacity']
         and mountinfo_count(h1, mp) == 1,
         'second mount is idempotent (no second mount)', r2)
    r3 = a1.call('storage.capacity', {'mountPath': mp})
    c.ok(r3['totalCapacity'] == r['totalCapacity'],
         'storage.capacity', r3)
    a2.call('storage.mount', {'uuid': ps, 'url': url, 'mountPath': mp})
    sh(h2, 'echo from-host2 > %s/h2' % mp)
    c.ok(sh(h1, 'cat %s/h2' % mp).stdout.strip() == 'from-host2',
         'two hosts share the export (host2 writes, host1 reads)')
    with open('/proc/self/mountinfo') as f:
        here = [l for l in f if l.split()[4] == mp]
    c.ok(not here, 'the mount exists only in the hosts\' mount namespaces')

    c.ok(a1.call('storage.unmount', {'uuid': ps, 'mountPath': mp}) == {}
         and mountinfo_count(h1, mp) == 0, 'unmount')
    c.ok(a1.call('storage.unmount', {'uuid': ps, 'mountPath': mp}) == {},
         'second unmount is idempotent')
    c.problem_is(a1.problem('storage.capacity', {'mountPath': mp}),
                 'not-found', 'capacity of an unmounted path is not-found',
                 'nothing is mounted')
    a2.call('storage.unmount', {'uuid': ps, 'mountPath': mp})

    for bad, why in (('ps/x', 'relative'), (ROOT + '/ps/../../etc', '..'),
                     (ROOT + '/ps//x', '//'), ('/etc/kvmstack/x', 'outside'),
                     (ROOT, 'the root itself'), (ROOT + '/ps/x/', 'slash')):
        c.problem_is(a1.problem('storage.mount', {'uuid': ps, 'url': url,
                                                  'mountPath': bad}),
                     'invalid-argument', 'mountPath refused: %s' % why,
                     'mountPath')
    for bad in ('-oremount:/x', 'server:relative', 'server:/a/../b',
                'srv:/a b', ':/x', 'srv:/{path}'):
        c.problem_is(a1.problem('storage.mount', {'uuid': ps, 'url': bad,
                                                  'mountPath': mp}),
                     'invalid-argument', 'url refused: %r' % bad, 'url')
    c.ok(mountinfo_count(h1, mp) == 0, 'refused mounts mounted nothing')

    write_conf(h1, conf.replace('{path}', '{nope}'))
    c.problem_is(a1.problem('storage.mount', {'uuid': ps, 'url': url,
                                              'mountPath': mp}),
                 'internal-error', 'unknown placeholder in the template',
                 'placeholder')
    write_conf(h1, 'nfs_mount_command = false {url} {path}\n')
    c.problem_is(a1.problem('storage.mount', {'uuid': ps, 'url': url,
                                              'mountPath': mp}),
                 'internal-error', 'a failing mount command is reported',
                 'status 1')
    write_conf(h1, conf)


# ---------------------------------------------------------------- images

def qemu_img_info(host, path):
    return json.loads(host.run_argv(['qemu-img', 'info', '--output=json',
                                     path]).stdout)


@case
def case_image(c):
    h1 = c.host('host1')
    a1 = c.agent('host1')
    d = ROOT + '/images/tmp'
    sh(h1, 'mkdir -p %s && cd %s && '
           'qemu-img create -q -f qcow2 good.qcow2 64M && '
           'qemu-img create -q -f raw plain.raw 16M && '
           'qemu-img create -q -f qcow2 -b %s/good.qcow2 -F qcow2 '
           'ovl.qcow2 && ln -s /etc escape' % (d, d, d))
    good = d + '/good.qcow2'
    sha = sh(h1, 'sha256sum %s' % good).stdout.split()[0]
    big = 1 << 30

    r = a1.call('image.check', {'path': good, 'format': 'qcow2',
                                'sha256': sha, 'maxVirtualSize': big})
    c.ok(r.get('format') == 'qcow2' and r.get('virtualSize') == 64 << 20
         and r.get('sha256') == sha and r.get('actualSize', 0) > 0,
         'a real qcow2 is accepted (format, virtual size, sha256)', r)
    r = a1.call('image.check', {'path': good, 'format': 'qcow2',
                                'sha256': None, 'maxVirtualSize': big})
    c.ok(r.get('sha256') == sha, 'without sha256 the agent computes it', r)
    r = a1.call('image.check', {'path': d + '/plain.raw', 'format': 'raw',
                                'sha256': None, 'maxVirtualSize': big})
    c.ok(r.get('format') == 'raw' and r.get('virtualSize') == 16 << 20,
         'a raw image declared raw is accepted', r)
    c.problem_is(a1.problem('image.check', {
        'path': good, 'format': 'raw', 'sha256': None,
        'maxVirtualSize': big}), 'invalid-argument',
        'a qcow2 declared raw is refused', "'qcow2'", "'raw'")
    c.problem_is(a1.problem('image.check', {
        'path': d + '/plain.raw', 'format': 'qcow2', 'sha256': None,
        'maxVirtualSize': big}), 'invalid-argument',
        'a raw image declared qcow2 is refused', 'format')
    c.problem_is(a1.problem('image.check', {
        'path': d + '/ovl.qcow2', 'format': 'qcow2', 'sha256': None,
        'maxVirtualSize': big}), 'invalid-argument',
        'a qcow2 with a backing file is refused', 'backing file')
    c.problem_is(a1.problem('image.check', {
        'path': good, 'format': 'qcow2', 'sha256': None,
        'maxVirtualSize': 32 << 20}), 'invalid-argument',
        'a virtual size over maxVirtualSize is refused', 'virtual size',
        str(64 << 20))
    c.problem_is(a1.problem('image.check', {
        'path': good, 'format': 'qcow2', 'sha256': '0' * 64,
        'maxVirtualSize': big}), 'invalid-argument',
        'a sha256 mismatch is refused', 'SHA-256', sha)
    c.problem_is(a1.problem('image.check', {
        'path': good, 'format': 'qcow2', 'sha256': 'xyz',
        'maxVirtualSize': big}), 'invalid-argument',
        'a malformed sha256 is refused', 'sha256')
    c.problem_is(a1.problem('image.check', {
        'path': good, 'format': 'vmdk', 'maxVirtualSize': big}),
        'invalid-argument', 'an unknown format is refused', 'format')
    c.problem_is(a1.problem('image.check', {
        'path': '/etc/passwd', 'format': 'raw', 'maxVirtualSize': big}),
        'invalid-argument', 'a path outside the storage root is refused',
        'storage root')
    c.problem_is(a1.problem('image.check', {
        'path': d + '/escape/passwd', 'format': 'raw',
        'maxVirtualSize': big}), 'invalid-argument',
        'a symlink out of the storage root is refused', 'resolves')
    c.problem_is(a1.problem('image.check', {
        'path': d + '/missing.qcow2', 'format': 'qcow2',
        'maxVirtualSize': big}), 'not-found', 'a missing image is not-found')

    dst = ROOT + '/images/cache/img1.qcow2'
    a1.call('image.commit', {'tmpPath': good, 'path': dst})
    c.ok(sh(h1, 'test -f %s && ! test -e %s' % (dst, good),
            check=False).returncode == 0,
         'image.commit renames into the cache (directory created)')
    c.ok(a1.call('image.commit', {'tmpPath': good, 'path': dst}) == {},
         'a repeated commit is idempotent')
    c.problem_is(a1.problem('image.commit', {'tmpPath': d + '/none',
                                             'path': d + '/none2'}),
                 'not-found', 'committing a missing download is not-found')


@case
def case_volume(c):
    h1 = c.host('host1')
    a1 = c.agent('host1')
    base = ROOT + '/images/cache/base.qcow2'
    sh(h1, 'mkdir -p %s/images/cache && qemu-img create -q -f qcow2 %s 32M'
       % (ROOT, base))
    vol = ROOT + '/volumes/vm1/root.qcow2'
    r = a1.call('volume.create', {'path': vol, 'backingFile': base})
    info = qemu_img_info(h1, vol)
    c.ok(r == {'path': vol} and info.get('format') == 'qcow2'
         and info.get('backing-filename') == base
         and info.get('backing-filename-format') == 'qcow2'
         and info.get('virtual-size') == 32 << 20,
         'volume.create makes a qcow2 overlay over the backing file',
         json.dumps(info))
    c.ok(a1.call('volume.create', {'path': vol, 'backingFile': base})
         == {'path': vol}, 'volume.create is idempotent')
    c.ok(not sh(h1, 'ls %s/volumes/vm1' % ROOT).stdout.strip().count('\n'),
         'no temporary file is left behind')
    sh(h1, 'qemu-img create -q -f qcow2 %s/images/cache/other.qcow2 32M'
       % ROOT)
    c.problem_is(a1.problem('volume.create', {
        'path': vol, 'backingFile': ROOT + '/images/cache/other.qcow2'}),
        'conflict', 'an existing volume over another backing file is a '
        'conflict', 'backing file')
    c.problem_is(a1.problem('volume.create', {
        'path': ROOT + '/volumes/vm2.qcow2',
        'backingFile': ROOT + '/images/cache/absent.qcow2'}),
        'not-found', 'a missing backing file is not-found')
    c.problem_is(a1.problem('volume.create', {
        'path': ROOT + '/volumes/../x.qcow2', 'backingFile': base}),
        'invalid-argument', 'a path with .. is refused', 'normalised')
    c.ok(a1.call('volume.delete', {'path': vol}) == {}
         and sh(h1, 'test -e %s' % vol, check=False).returncode != 0,
         'volume.delete removes the volume')
    c.ok(a1.call('volume.delete', {'path': vol}) == {},
         'volume.delete is idempotent')
    c.ok(sh(h1, 'test -f %s' % base, check=False).returncode == 0,
         'the backing file stays')


# ---------------------------------------------------------------- network

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in_netns(netns, family=socket.AF_INET, kind=socket.SOCK_STREAM,
                    proto=0):
    """A socket that lives in network namespace /run/netns/<netns>: made
    by a short-lived thread that joins it (setns is per thread)."""
    out = {}

    def run():
        try:
            fd = os.open('/run/netns/' + netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), 'setns')
            finally:
                os.close(fd)
            out['sock'] = socket.socket(family, kind, proto)
        except Exception as e:      # reported to the caller
            out['error'] = e
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if 'error' in out:
        raise out['error']
    return out['sock']


def _icmp_checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def icmp_ping(netns, dst, count=3, timeout=2.0):
    """Sends 'count' ICMP echo requests to 'dst' from network namespace
    'netns' (a raw socket: the bed has no ping binary) and returns how many
    were answered."""
    sock = socket_in_netns(netns, socket.AF_INET, socket.SOCK_RAW,
                           socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xffff
    answered = 0
    try:
        for seq in range(1, count + 1):
            payload = b'kvmstack-agent-test'
            hdr = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
            pkt = struct.pack('!BBHHH', 8, 0,
                              _icmp_checksum(hdr + payload), ident, seq)
            sock.sendto(pkt + payload, (dst, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data, src = sock.recvfrom(2048)
                except socket.timeout:
                    break
                ihl = (data[0] & 15) * 4
                typ, _, _, rid, rseq = struct.unpack(
                    '!BBHHH', data[ihl:ihl + 8])
                if src[0] == dst and typ == 0 and rid == ident \
                        and rseq == seq:
                    answered += 1
                    break
    finally:
        sock.close()
    return answered


ECHO_SERVER = r'''
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print('listening', flush=True)
c, _ = s.accept()
while True:
    d = c.recv(4096)
    if not d:
        break
    c.sendall(d)
'''


def echo(sock, text, timeout=10):
    sock.settimeout(timeout)
    sock.sendall(text.encode())
    got = b''
    while len(got) < len(text):
        d = sock.recv(4096)
        if not d:
            break
        got += d
    return got.decode()


def links(host):
    return sh(host, "ip -o link show | awk -F': ' '{print $2}' "
                    "| cut -d@ -f1").stdout.split()


def addrs4(host, dev):
    out = sh(host, 'ip -o -4 addr show dev %s' % dev, check=False).stdout
    return re.findall(r'inet (\S+)', out)


@case
def case_net_args(c):
    a1 = c.agent('host1')
    for bad in ('bad name', 'x' * 16, '', '../x', 'br;x', '..'):
        c.problem_is(a1.problem('net.bridge.ensure', {
            'type': 'L2NoVlanNetwork', 'physicalInterface': 'eth0',
            'bridge': bad}), 'invalid-argument',
            'bridge name refused: %r' % bad, 'bridge')
    c.problem_is(a1.problem('net.bridge.remove', {'bridge': 'a b'}),
                 'invalid-argument', 'remove checks the bridge name too',
                 'bridge')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'L3Network', 'bridge': 'brx'}), 'invalid-argument',
        'an unknown type is refused', 'type')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'L2NoVlanNetwork', 'physicalInterface': 'nosuch0',
        'bridge': 'brx'}), 'not-found', 'a missing interface is not-found',
        'nosuch0')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'L2VlanNetwork', 'physicalInterface': 'eth0', 'vlan': 4095,
        'bridge': 'brx'}), 'invalid-argument', 'vlan 4095 is refused',
        'vlan')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'VxlanNetwork', 'vni': 1 << 24, 'localIp': '10.250.1.2',
        'bridge': 'brx'}), 'invalid-argument', 'vni 2^24 is refused', 'vni')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'VxlanNetwork', 'vni': 10, 'localIp': '192.0.2.99',
        'bridge': 'brx'}), 'invalid-argument',
        'a localIp that is not on the host is refused', 'localIp')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'VxlanNetwork', 'vni': 10, 'localIp': '10.250.1.2',
        'peers': ['10.0.0.1', 'nope'], 'bridge': 'brx'}),
        'invalid-argument', 'a malformed peer is refused', 'peers')
    c.ok('brx' not in links(c.host('host1')), 'nothing was created')
    c.ok(a1.call('net.bridge.remove', {'bridge': 'brnone'}) == {},
         'removing a missing bridge is ok (idempotent)')


def make_peer_netns(c, host, ifname, host_cidr, peer_cidr):
    """A netns 'ksagent-<pid>-peer' joined to 'host' by veth 'ifname'
    (host side) / 'p0' (peer side).  Removed at close."""
    peer = 'ksagent-%d-peer' % os.getpid()
    root_run(['ip', 'netns', 'add', peer])
    c.cleanups.append(lambda: root_run(['ip', 'netns', 'del', peer],
                                         check=False))
    root_run(['ip', 'link', 'add', ifname, 'netns', host.netns, 'type',
                'veth', 'peer', 'name', 'p0', 'netns', peer])
    root_run(['ip', '-n', peer, 'link', 'set', 'lo', 'up'])
    root_run(['ip', '-n', peer, 'addr', 'add', peer_cidr, 'dev', 'p0'])
    root_run(['ip', '-n', peer, 'link', 'set', 'p0', 'up'])
    sh(host, 'ip addr add %s dev %s && ip link set %s up'
       % (host_cidr, ifname, ifname))
    return peer


@case
def case_net_novlan(c):
    h1 = c.host('host1')
    a1 = c.agent('host1')
    peer = make_peer_netns(c, h1, 'up0', '10.250.201.2/24', '10.250.201.1/24')
    sh(h1, 'ip addr add 10.250.201.3/24 dev up0')       # a secondary
    # A default route into the dead-end peer namespace (it has no other
    # link and no forwarding): it only checks that the route moves.
    sh(h1, 'ip route add default via 10.250.201.1 dev up0')
    mac = sh(h1, 'cat /sys/class/net/up0/address').stdout.strip()
    server = subprocess.Popen(
        ['ip', 'netns', 'exec', peer, sys.executable, '-c', ECHO_SERVER,
         '10.250.201.1', '7777'], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    c.cleanups.append(lambda: (server.kill(), server.wait()))
    server.stdout.readline()
    conn = socket_in_netns(h1.netns)
    c.cleanups.append(conn.close)
    conn.settimeout(5)
    conn.connect(('10.250.201.1', 7777))
    c.ok(echo(conn, 'before') == 'before',
         'TCP connection from the host to the peer over up0')

    params = {'type': 'L2NoVlanNetwork', 'physicalInterface': 'up0',
              'bridge': 'br-nv'}
    t0 = time.monotonic()
    r = a1.call('net.bridge.ensure', params)
    took = time.monotonic() - t0
    c.ok(r == {'bridge': 'br-nv'}, 'ensure NoVlan (%.0f ms)' % (took * 1000),
         r)
    c.ok(echo(conn, 'after-ensure') == 'after-ensure',
         'the live TCP connection survives the address move')
    c.ok(addrs4(h1, 'br-nv') == ['10.250.201.2/24', '10.250.201.3/24']
         and addrs4(h1, 'up0') == [],
         'both IPv4 addresses moved from up0 to br-nv, primary first',
         '%s %s' % (addrs4(h1, 'br-nv'), addrs4(h1, 'up0')))
    c.ok(re.search(r'^default via 10\.250\.201\.1 dev br-nv',
                   sh(h1, 'ip route show default').stdout, re.M),
         'the default route moved to br-nv',
         sh(h1, 'ip route').stdout)
    c.ok('master br-nv' in sh(h1, 'ip -o link show up0').stdout,
         'up0 is a port of br-nv')
    c.ok(sh(h1, 'cat /sys/class/net/br-nv/address').stdout.strip() == mac,
         'the bridge took up0\'s MAC address')
    c.ok(icmp_ping(h1.netns, '10.250.201.1', 1) == 1,
         'ping (ICMP echo) through the bridge')
    c.ok(a1.call('net.bridge.ensure', params) == {'bridge': 'br-nv'}
         and addrs4(h1, 'br-nv') == ['10.250.201.2/24', '10.250.201.3/24'],
         'ensure is idempotent')
    c.problem_is(a1.problem('net.bridge.ensure', dict(params,
                                                      bridge='br-other')),
                 'conflict', 'up0 cannot join a second bridge', 'br-nv')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'VxlanNetwork', 'vni': 7, 'localIp': '10.250.201.2',
        'bridge': 'br-nv'}), 'conflict',
        'a NoVlan bridge is not turned into a VXLAN one', 'L2NoVlanNetwork')

    c.ok(a1.call('net.bridge.remove', {'bridge': 'br-nv'}) == {},
         'remove NoVlan')
    c.ok(echo(conn, 'after-remove') == 'after-remove',
         'the live TCP connection survives the move back')
    c.ok(addrs4(h1, 'up0') == ['10.250.201.2/24', '10.250.201.3/24']
         and 'br-nv' not in links(h1),
         'addresses are back on up0 and br-nv is gone', addrs4(h1, 'up0'))
    c.ok(re.search(r'^default via 10\.250\.201\.1 dev up0',
                   sh(h1, 'ip route show default').stdout, re.M),
         'the default route is back on up0', sh(h1, 'ip route').stdout)
    c.ok('up0' in links(h1), 'remove keeps the physical interface')
    sh(h1, 'ip route del default')


@case
def case_net_vlan(c):
    h1 = c.host('host1')
    a1 = c.agent('host1')
    if 'vl0' not in links(h1):
        root_run(['ip', 'link', 'add', 'vl0', 'netns', h1.netns, 'type',
                    'veth', 'peer', 'name', 'vl1', 'netns', h1.netns])
    before = sorted(links(h1))
    c.tap.note('VLAN: this kernel lacks 802.1q; L2VlanNetwork must fail '
               'with not-supported and leave nothing behind')
    c.problem_is(a1.problem('net.bridge.ensure', {
        'type': 'L2VlanNetwork', 'physicalInterface': 'vl0', 'vlan': 100,
        'bridge': 'br-vl'}), 'not-supported',
        'L2VlanNetwork is not-supported on this kernel', '802.1q', 'vl0')
    after = sorted(links(h1))
    c.ok(after == before and 'br-vl' not in after
         and 'vl0.100' not in after, 'no link was left behind',
         '%s -> %s' % (before, after))
    sh(h1, 'ip link del vl0')


def fdb_zero_dsts(host, dev):
    out = sh(host, 'bridge fdb show dev %s' % dev, check=False).stdout
    return sorted(re.findall(r'^00:00:00:00:00:00 dst (\S+) self', out,
                             re.M))


@case
def case_net_vxlan(c):
    h1 = c.host('host1')
    h2 = c.host('host2')
    a1 = c.agent('host1')
    a2 = c.agent('host2')
    c.tap.note('VXLAN underlay: veth ul0 between the two hosts\' '
               'namespaces, 10.250.200.1/24 <-> 10.250.200.2/24')
    root_run(['ip', 'link', 'add', 'ul0', 'netns', h1.netns, 'type',
                'veth', 'peer', 'name', 'ul0', 'netns', h2.netns])
    c.cleanups.append(lambda: root_run(
        ['ip', '-n', h1.netns, 'link', 'del', 'ul0'], check=False))
    sh(h1, 'ip addr add 10.250.200.1/24 dev ul0 && ip link set ul0 up')
    sh(h2, 'ip addr add 10.250.200.2/24 dev ul0 && ip link set ul0 up')
    peers = ['10.250.200.1', '10.250.200.2']
    p1 = {'type': 'VxlanNetwork', 'vni': 4242, 'physicalInterface': 'ul0',
          'localIp': '10.250.200.1', 'peers': peers, 'bridge': 'br-vx'}
    p2 = dict(p1, localIp='10.250.200.2')
    c.ok(a1.call('net.bridge.ensure', p1) == {'bridge': 'br-vx'}
         and a2.call('net.bridge.ensure', p2) == {'bridge': 'br-vx'},
         'ensure VXLAN on both hosts')
    d = sh(h1, 'ip -d link show vx4242').stdout
    c.ok(all(s in d for s in ('vxlan id 4242', 'local 10.250.200.1',
                              'dev ul0', 'dstport 4789', 'master br-vx',
                              'mtu 1450', ' learning'))
         and 'nolearning' not in d,
         'vx4242: VNI, local, underlay, port 4789, learning, MTU 1450, '
         'enslaved', d)
    c.ok(fdb_zero_dsts(h1, 'vx4242') == ['10.250.200.2'],
         'one all-zero FDB entry per peer, own address skipped',
         fdb_zero_dsts(h1, 'vx4242'))
    sh(h1, 'ip addr add 10.99.0.1/24 dev br-vx')
    sh(h2, 'ip addr add 10.99.0.2/24 dev br-vx')
    tx0 = int(sh(h1, 'cat /sys/class/net/vx4242/statistics/tx_packets')
              .stdout)
    got = icmp_ping(h1.netns, '10.99.0.2', 3)
    tx1 = int(sh(h1, 'cat /sys/class/net/vx4242/statistics/tx_packets')
              .stdout)
    c.ok(got == 3 and tx1 - tx0 >= 3,
         'ping between the two bridges over VXLAN (%d/3 answered, %d '
         'packets sent through vx4242)' % (got, tx1 - tx0))
    c.ok(a1.call('net.bridge.ensure', p1) == {'bridge': 'br-vx'}
         and fdb_zero_dsts(h1, 'vx4242') == ['10.250.200.2'],
         'ensure is idempotent')
    a1.call('net.bridge.ensure', dict(p1, peers=peers + ['10.250.200.77',
                                                         '10.250.200.78']))
    c.ok(fdb_zero_dsts(h1, 'vx4242') == ['10.250.200.2', '10.250.200.77',
                                         '10.250.200.78'],
         'peers added', fdb_zero_dsts(h1, 'vx4242'))
    a1.call('net.bridge.ensure', dict(p1, peers=['10.250.200.78']))
    c.ok(fdb_zero_dsts(h1, 'vx4242') == ['10.250.200.78'],
         'peers removed to match the list exactly',
         fdb_zero_dsts(h1, 'vx4242'))
    a1.call('net.bridge.ensure', dict(p1, peers=[]))
    c.ok(fdb_zero_dsts(h1, 'vx4242') == [], 'an empty list removes all')
    a1.call('net.bridge.ensure', p1)
    c.ok(fdb_zero_dsts(h1, 'vx4242') == ['10.250.200.2'], 'peer back')
    c.ok(icmp_ping(h1.netns, '10.99.0.2', 1) == 1, 'ping still works')

    sh(h1, 'ip tuntap add dev vnet0 mode tap && '
           'ip link set vnet0 master br-vx')
    c.problem_is(a1.problem('net.bridge.remove', {'bridge': 'br-vx'}),
                 'conflict', 'remove refuses while a VM tap is a port',
                 'vnet0')
    c.ok('br-vx' in links(h1) and 'vx4242' in links(h1),
         'the refused remove changed nothing')
    sh(h1, 'ip link del vnet0')
    c.ok(a1.call('net.bridge.remove', {'bridge': 'br-vx'}) == {}
         and a2.call('net.bridge.remove', {'bridge': 'br-vx'}) == {},
         'remove on both hosts')
    c.ok(not {'br-vx', 'vx4242'} & set(links(h1) + links(h2))
         and 'ul0' in links(h1),
         'bridge and VXLAN device gone, underlay interface kept')
    c.ok(a1.call('net.bridge.remove', {'bridge': 'br-vx'}) == {},
         'second remove is idempotent')


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only')
    ap.add_argument('--list', action='store_true')
    args = ap.parse_args()
    if args.list:
        for name, _ in CASES:
            print(name)
        return 0
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root')
        return 0
    head = (args.only or '').split(':', 1)[0].strip()
    cases = [(name, fn) for name, fn in CASES
             if not args.only or fnmatch.fnmatchcase(name, args.only)
             or fnmatch.fnmatchcase(name, head)]
    if not cases:
        print('1..0 # SKIP no case matches %r' % args.only)
        return 0
    tap = Tap()
    tap.note('agent binary: %s' % agent_binary())
    ctx = Ctx(tap)
    try:
        for name, fn in cases:
            ctx.name = name
            try:
                fn(ctx)
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: B902
                diag = ''.join(traceback.format_exception(
                    type(e), e, e.__traceback__))
                for a in ctx.agents.values():
                    diag += '\nagent log:\n' + a.stderr_text(last=10)
                tap.ok(False, '%s: (case crashed)' % name, diag)
    finally:
        ctx.close()
    print('1..%d' % tap.n, flush=True)
    return 1 if tap.failed or tap.n == 0 else 0


if __name__ == '__main__':
    sys.exit(main())

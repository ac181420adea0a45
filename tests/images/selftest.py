#!/usr/bin/env python3
"""Self-test of build/images/test-guest.qcow2 (images/build-guest.sh) and
build/images/kvmstack-vr.qcow2 (images/build-vr.sh).
Prints TAP; exits non-zero on failure.  Needs root, qemu-system-x86,
dnsmasq, sshpass; libvirt for part 2.

    python3 tests/images/selftest.py [--images DIR] [--no-libvirt] [--no-httpserve] [--no-vr]

Part 1, plain qemu (TCG): a network namespace made here holds a bridge, a
tap and dnsmasq (DHCP only, --port=0 --no-resolv; no route out); the guest
boots from a qcow2 overlay whose backing file is the image.  Checks: serial
log shows GUEST-UP, NET, HOSTNAME, GUEST-READY; the DHCP address and the
DHCP hostname; root login over SSH with the password "password" against
the pinned host key (build/images/test-guest.hostkey.pub); a wrong
password is refused; qemu's system_powerdown (ACPI) ends the guest.
Part 2, libvirt in a tests/bed host: the same overlay as a `<domain
type='qemu'>` disk-boot domain on a bridge, dnsmasq in the host, SSH from
the host, `virsh shutdown` ends the domain; and tests/bed/httpserve.py
serves the image directory (HTTP GET of the qcow2, sha256 compared).
Part 3, the VR image under plain qemu with two NICs on isolated qemu hub
ports and a virtio-serial channel: VR-NIC/VR-PORT/VR-CHECK/VR-READY, ACPI
power-off; then build-vr.sh with a fake kvmstack-vr binary, which the VR's
init starts and which writes to the channel.
Everything made here is removed at the end, pass or fail.
"""

import argparse
import atexit
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, 'tests', 'bed'))

TAG = 'ksimg'
NET = '10.77.0'                      # inside our namespace only
GUEST_IP = NET + '.50'
GUEST_MAC = '52:54:00:77:00:50'
GUEST_NAME = 'imgtest-vm1'           # handed out by DHCP
PASSWORD = 'password'
BOOT_TIMEOUT = 90

_n = [0]
_failed = [0]


def ok(cond, desc, diag=None):
    _n[0] += 1
    print('%sok %d - %s' % ('' if cond else 'not ', _n[0], desc), flush=True)
    if not cond:
        _failed[0] += 1
        if diag:
            for line in str(diag).strip().splitlines()[-25:]:
                print('#   ' + line, flush=True)
    return cond


def skip(desc, why):
    _n[0] += 1
    print('ok %d - %s # SKIP %s' % (_n[0], desc, why), flush=True)


def note(msg):
    print('# ' + msg, flush=True)


def sh(argv, check=True, timeout=30, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode:
        raise RuntimeError('%s: exit %d: %s' % (' '.join(argv), r.returncode,
                                                 (r.stderr or r.stdout).strip()))
    return r


def read(path):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def wait_for(pred, timeout, interval=0.1):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


def ssh_argv(ip, known_hosts, cmd):
    return ['sshpass', '-e', 'ssh', '-F', '/dev/null',
            '-o', 'UserKnownHostsFile=' + known_hosts, '-o', 'GlobalKnownHostsFile=/dev/null',
            '-o', 'StrictHostKeyChecking=yes', '-o', 'PubkeyAuthentication=no',
            '-o', 'PreferredAuthentications=password', '-o', 'NumberOfPasswordPrompts=1',
            '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', 'root@' + ip, cmd]


# ---------------------------------------------------------------- cleanup

class Cleanup:
    """Everything this run made, undone in reverse order (also at exit and
    on SIGTERM)."""

    def __init__(self):
        self.steps = []
        self.done = False

    def add(self, fn, *a):
        self.steps.append((fn, a))

    def run(self):
        if self.done:
            return
        self.done = True
        for fn, a in reversed(self.steps):
            try:
                fn(*a)
            except Exception as e:      # keep going: remove as much as we can
                print('# cleanup: %s%r: %s' % (fn.__name__, a, e), flush=True)


def kill_proc(p, timeout=5):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def kill_pidfile(path):
    try:
        pid = int(read(path).strip())
    except ValueError:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    for _ in range(100):
        if not os.path.exists('/proc/%d' % pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def reap_stale():
    """Leftovers of earlier runs of this test whose process is dead."""
    r = sh(['ip', 'netns', 'list'], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r'^%s-(\d+)\b' % TAG, line)
        if m and not os.path.exists('/proc/' + m.group(1)):
            # processes of that run carry its dir in their command line
            for d in os.listdir('/proc'):
                if d.isdigit():
                    cl = read('/proc/%s/cmdline' % d)
                    if '/%s-%s-' % (TAG, m.group(1)) in cl:
                        try:
                            os.kill(int(d), signal.SIGKILL)
                        except OSError:
                            pass
            sh(['ip', 'netns', 'del', line.split()[0]], check=False)
    tmp = tempfile.gettempdir()
    for d in os.listdir(tmp):
        m = re.match(r'^%s-(\d+)-' % TAG, d)
        if m and not os.path.exists('/proc/' + m.group(1)):
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)


# ---------------------------------------------------------------- checks

def check_image(images):
    img = os.path.join(images, 'test-guest.qcow2')
    pub = os.path.join(images, 'test-guest.hostkey.pub')
    if not ok(os.path.isfile(img), 'image exists: %s' % img, 'run: make images'):
        return None
    info = sh(['qemu-img', 'info', '--output=json', img])
    import json
    j = json.loads(info.stdout)
    size = os.path.getsize(img)
    ok(j.get('format') == 'qcow2' and 'backing-filename' not in j
       and j.get('virtual-size', 0) <= 256 << 20,
       'qcow2, no backing file, virtual size %d MiB' % (j.get('virtual-size', 0) >> 20),
       info.stdout)
    ok(size <= 25 << 20, 'image is small: %.1f MB' % (size / 1e6))
    key = read(pub).split()
    ok(len(key) >= 2 and key[0] == 'ssh-ed25519', 'pinned host key %s' % pub, read(pub))
    sumf = read(img + '.sha256').split()
    with open(img, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    ok(sumf[:1] == [digest], 'test-guest.qcow2.sha256 matches the image')
    return ' '.join(key[:2])


def serial_marks(log):
    return {k: m.group(1).strip() for k in ('GUEST-UP', 'NET', 'HOSTNAME', 'GUEST-READY')
            for m in [re.search(r'^%s(.*)$' % k, log, re.M)] if m}


def part_qemu(images, pub, work, cl):
    """Plain qemu (TCG) in a namespace of our own."""
    ns = '%s-%d' % (TAG, os.getpid())
    overlay = os.path.join(work, 'vm1.qcow2')
    serial = os.path.join(work, 'vm1-serial.log')
    mon = os.path.join(work, 'vm1.mon')
    kh = os.path.join(work, 'known_hosts')
    with open(kh, 'w') as f:
        f.write('%s %s\n' % (GUEST_IP, pub))

    sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b',
        os.path.join(images, 'test-guest.qcow2'), overlay])
    sh(['ip', 'netns', 'add', ns])
    cl.add(sh, ['ip', 'netns', 'del', ns], False)
    nsx = ['ip', 'netns', 'exec', ns]
    sh(['ip', '-n', ns, '-batch', '-'], input='\n'.join([
        'link set lo up',
        'link add br0 type bridge',
        'tuntap add tap0 mode tap',
        'link set tap0 master br0',
        'link set tap0 up',
        'link set br0 up',
        'addr add %s.1/24 dev br0' % NET]) + '\n')
    sh(nsx + ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'], check=False)
    dpid = os.path.join(work, 'dnsmasq.pid')
    sh(nsx + ['dnsmasq', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--port=0',
              '--user=root', '--interface=br0', '--bind-interfaces', '--dhcp-authoritative',
              '--dhcp-range=%s.100,%s.150,255.255.255.0,1h' % (NET, NET),
              '--dhcp-host=%s,%s,%s' % (GUEST_MAC, GUEST_IP, GUEST_NAME),
              '--dhcp-option=option:router,%s.1' % NET,
              '--dhcp-leasefile=' + os.path.join(work, 'leases'),
              '--pid-file=' + dpid, '--log-dhcp',
              '--log-facility=' + os.path.join(work, 'dnsmasq.log')])
    cl.add(kill_pidfile, dpid)

    t0 = time.monotonic()
    qemu = subprocess.Popen(nsx + [
        'qemu-system-x86_64', '-name', 'ksimg-vm1', '-machine', 'pc,accel=tcg', '-m', '192',
        '-smp', '1', '-display', 'none', '-no-user-config', '-nodefaults',
        '-serial', 'file:' + serial, '-monitor', 'unix:%s,server=on,wait=off' % mon,
        '-drive', 'file=%s,if=virtio,format=qcow2' % overlay,
        '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no',
        '-device', 'virtio-net-pci,netdev=n0,mac=' + GUEST_MAC],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, 'qemu.err'), 'w'))
    cl.add(kill_proc, qemu)

    ready = wait_for(lambda: 'GUEST-READY' in read(serial) or qemu.poll() is not None,
                     BOOT_TIMEOUT, 0.05)
    boot_s = time.monotonic() - t0
    log = read(serial)
    marks = serial_marks(log)
    if not ok(ready and 'GUEST-READY' in marks, 'qemu: boots to GUEST-READY in %.1f s' % boot_s,
              log + read(os.path.join(work, 'qemu.err'))):
        return
    note('qemu start -> GUEST-READY %.2f s (guest %s)' % (boot_s, marks['GUEST-READY']))
    ok('GUEST-UP' in marks, 'serial: GUEST-UP', log)
    ok(marks.get('NET', '').startswith(GUEST_IP + '/24'),
       'serial: NET %s/24 (DHCP)' % GUEST_IP, log)
    ok(marks.get('HOSTNAME') == GUEST_NAME, 'serial: HOSTNAME %s (DHCP option 12)' % GUEST_NAME,
       log)
    ok(re.search(r'DHCPACK\(br0\) %s %s %s' % (re.escape(GUEST_IP), GUEST_MAC, GUEST_NAME),
                 read(os.path.join(work, 'dnsmasq.log'))),
       'dnsmasq acked the lease', read(os.path.join(work, 'dnsmasq.log')))

    env = dict(os.environ, SSHPASS=PASSWORD)
    t = time.monotonic()
    r = sh(nsx + ssh_argv(GUEST_IP, kh, 'hostname; id -u; cat /proc/uptime'),
           check=False, timeout=60, env=env)
    ok(r.returncode == 0 and r.stdout.split()[:2] == [GUEST_NAME, '0'],
       'ssh root@guest with password, pinned host key: hostname %s (%.2f s)'
       % (GUEST_NAME, time.monotonic() - t), r.stdout + r.stderr)
    r = sh(nsx + ssh_argv(GUEST_IP, kh, 'true'), check=False, timeout=60,
           env=dict(os.environ, SSHPASS='wrong-password'))
    ok(r.returncode != 0 and 'denied' in r.stderr.lower(), 'a wrong password is refused',
       r.stdout + r.stderr)
    bad = os.path.join(work, 'known_hosts.bad')
    sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', os.path.join(work, 'otherkey')])
    with open(bad, 'w') as f:       # another valid ed25519 key: must not be accepted
        f.write('%s %s\n' % (GUEST_IP, ' '.join(read(os.path.join(work, 'otherkey.pub'))
                                                 .split()[:2])))
    r = sh(nsx + ssh_argv(GUEST_IP, bad, 'true'), check=False, timeout=60, env=env)
    ok(r.returncode != 0 and 'host key' in r.stderr.lower(),
       'a different pinned key is rejected (StrictHostKeyChecking)', r.stderr)

    # ACPI power button through the monitor
    t = time.monotonic()
    err = powerdown(mon)
    try:
        rc = qemu.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc is not None and 'GUEST-POWEROFF' in read(serial),
       'qemu: system_powerdown (ACPI) powers the guest off in %.2f s' % (time.monotonic() - t),
       err + '\n' + read(serial)[-1500:])


def powerdown(mon):
    """Press the ACPI power button through qemu's human monitor socket."""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(mon)
        s.recv(4096)
        s.sendall(b'system_powerdown\n')
        time.sleep(0.1)
        s.close()
        return ''
    except OSError as e:
        return str(e)


FAKE_VR = r'''
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
/* stand-in for hostagent/vr's kvmstack-vr: says hello over the channel */
int main(void) {
    int fd = open("/dev/virtio-ports/org.kvmstack.vr.0", O_RDWR);
    printf("VR-READY fake-daemon port=%s\n", fd >= 0 ? "ok" : "missing");
    fflush(stdout);
    for (;;) {
        if (fd >= 0 && write(fd, "HELLO-FROM-VR\n", 14) < 0) sleep(1);
        usleep(200000);
    }
}
'''


def boot_vr(name, disk, work, cl):
    """Boot a VR disk under plain qemu: two isolated NICs (qemu hub ports
    with nothing else on them, so no packet goes anywhere) and the
    virtio-serial channel org.kvmstack.vr.0 on a unix socket."""
    ov = os.path.join(work, name + '.qcow2')
    serial = os.path.join(work, name + '-serial.log')
    mon = os.path.join(work, name + '.mon')
    chan = os.path.join(work, name + '.chan')
    sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', disk, ov])
    t0 = time.monotonic()
    q = subprocess.Popen([
        'qemu-system-x86_64', '-name', 'ksimg-' + name, '-machine', 'pc,accel=tcg', '-m', '192',
        '-smp', '1', '-display', 'none', '-no-user-config', '-nodefaults',
        '-serial', 'file:' + serial, '-monitor', 'unix:%s,server=on,wait=off' % mon,
        '-drive', 'file=%s,if=virtio,format=qcow2' % ov,
        '-netdev', 'hubport,id=n0,hubid=0',
        '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:77:01:01',
        '-netdev', 'hubport,id=n1,hubid=1',
        '-device', 'virtio-net-pci,netdev=n1,mac=52:54:00:77:01:02',
        '-device', 'virtio-serial',
        '-chardev', 'socket,id=ch0,path=%s,server=on,wait=off' % chan,
        '-device', 'virtserialport,chardev=ch0,name=org.kvmstack.vr.0'],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, name + '.err'), 'w'))
    cl.add(kill_proc, q)
    ready = wait_for(lambda: 'VR-READY' in read(serial) or q.poll() is not None,
                     BOOT_TIMEOUT, 0.05)
    return q, serial, mon, chan, ready, time.monotonic() - t0


def vr_off(q, serial, mon, what):
    t = time.monotonic()
    err = powerdown(mon)
    try:
        rc = q.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc is not None and 'VR-POWEROFF' in read(serial),
       '%s: ACPI power-off in %.2f s' % (what, time.monotonic() - t), err + read(serial)[-800:])


def part_vr(images, work, cl):
    disk = os.path.join(images, 'kvmstack-vr.qcow2')
    if not ok(os.path.isfile(disk), 'VR image exists: %s' % disk, 'run: make images'):
        return
    size = os.path.getsize(disk)
    ok(size <= 30 << 20, 'VR image is small: %.1f MB' % (size / 1e6))
    q, serial, mon, chan, ready, secs = boot_vr('vr1', disk, work, cl)
    log = read(serial)
    if not ok(ready and re.search(r'^VR-READY', log, re.M),
              'VR: boots to VR-READY in %.1f s' % secs, log + read(os.path.join(work, 'vr1.err'))):
        return
    note('VR: qemu start -> VR-READY %.2f s' % secs)
    ok(re.search(r'^VR-NIC eth0 mac=52:54:00:77:01:01', log, re.M)
       and re.search(r'^VR-NIC eth1 mac=52:54:00:77:01:02', log, re.M),
       'VR: two NICs, eth0 and eth1 in PCI order', log)
    ok(re.search(r'^VR-PORT org\.kvmstack\.vr\.0 /dev/vport\d+p\d+', log, re.M),
       'VR: virtio-serial port org.kvmstack.vr.0 (virtio_console)', log)
    m = re.search(r'^VR-CHECK nft=(\w+) dnsmasq=(\w+) modules=(\d+)/(\d+)', log, re.M)
    ok(m and m.group(1) == 'ok' and m.group(2) == 'ok' and m.group(3) == m.group(4),
       'VR: nft NAT table with map/dnat/masquerade loads, dnsmasq runs, all modules load'
       + (' (%s/%s)' % (m.group(3), m.group(4)) if m else ''), log)
    vr_off(q, serial, mon, 'VR')

    # the optional daemon argument of build-vr.sh, with a fake kvmstack-vr
    if not shutil.which('cc'):
        skip('VR with a kvmstack-vr binary', 'no C compiler')
        return
    src = os.path.join(work, 'fake-vr.c')
    with open(src, 'w') as f:
        f.write(FAKE_VR)
    fake = os.path.join(work, 'fake-bin', 'kvmstack-vr')
    os.makedirs(os.path.dirname(fake))
    sh(['cc', '-O2', '-o', fake, src])
    out = os.path.join(work, 'vrimg')
    os.makedirs(out)
    os.symlink(os.path.join(images, 'cache'), os.path.join(out, 'cache'))  # no new download
    t = time.monotonic()
    r = sh([os.path.join(REPO, 'images', 'build-vr.sh'), out, fake], check=False, timeout=300)
    if not ok(r.returncode == 0, 'build-vr.sh OUT BINARY builds a VR with the daemon (%.1f s)'
              % (time.monotonic() - t), r.stderr):
        return
    q, serial, mon, chan, ready, secs = boot_vr('vr2', os.path.join(out, 'kvmstack-vr.qcow2'),
                                                work, cl)
    got = ''
    try:
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(BOOT_TIMEOUT)
        c.connect(chan)
        while '\n' not in got:
            b = c.recv(64)
            if not b:
                break
            got += b.decode(errors='replace')
        c.close()
    except OSError as e:
        got += ' (%s)' % e
    log = read(serial)
    ok(re.search(r'^VR-DAEMON /usr/sbin/kvmstack-vr', log, re.M)
       and re.search(r'VR-READY fake-daemon port=ok', log),
       'VR: init starts /usr/sbin/kvmstack-vr (which prints VR-READY itself)', log)
    ok(got.startswith('HELLO-FROM-VR'), 'VR: the daemon talks over the virtio-serial channel',
       got)
    vr_off(q, serial, mon, 'VR with daemon')


def part_libvirt(images, pub, work, cl):
    """The image as a libvirt domain in a tests/bed host."""
    import bed as bedmod
    b = bedmod.Bed()
    cl.add(b.close)
    h = b.add_host('imgtest', with_libvirt=True)
    h.run('virtlogd -d && libvirtd -d')
    ok(wait_for(lambda: h.run('virsh -q version >/dev/null 2>&1', check=False).returncode == 0,
                20, 0.1), 'bed host: libvirtd answers')
    lw = os.path.join(work, 'lv')
    os.makedirs(lw)
    overlay = os.path.join(lw, 'vm2.qcow2')
    sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b',
        os.path.join(images, 'test-guest.qcow2'), overlay])
    kh = os.path.join(lw, 'known_hosts')
    with open(kh, 'w') as f:
        f.write('%s %s\n' % (GUEST_IP, pub))
    h.run('ip link add br-img type bridge && ip link set br-img up && '
          'ip addr add %s.1/24 dev br-img' % NET)
    h.run('dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --port=0 --user=root '
          '--interface=br-img --bind-interfaces --dhcp-authoritative '
          '--dhcp-range=%s.100,%s.150,255.255.255.0,1h --dhcp-host=%s,%s,%s '
          '--dhcp-leasefile=%s/leases --pid-file=%s/dnsmasq.pid '
          '--log-facility=%s/dnsmasq.log --log-dhcp'
          % (NET, NET, GUEST_MAC, GUEST_IP, 'imgtest-vm2', lw, lw, lw))
    xml = os.path.join(lw, 'vm2.xml')
    with open(xml, 'w') as f:
        f.write('''<domain type='qemu'>
  <name>imgtest-vm2</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <source bridge='br-img'/>
      <mac address='%s'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <log file='/var/log/libvirt/qemu/imgtest-vm2-serial.log' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
''' % (overlay, GUEST_MAC))
    h.run('virsh -q define %s' % xml)
    t0 = time.monotonic()
    h.run('virsh -q start imgtest-vm2')
    slog = os.path.join(h.dir, 'log-libvirt', 'qemu', 'imgtest-vm2-serial.log')
    ready = wait_for(lambda: 'GUEST-READY' in read(slog), BOOT_TIMEOUT, 0.05)
    boot_s = time.monotonic() - t0
    marks = serial_marks(read(slog))
    if not ok(ready, 'libvirt: virsh start -> GUEST-READY in %.1f s' % boot_s,
              read(slog) + h.run('tail -5 /var/log/libvirt/qemu/imgtest-vm2.log',
                                 check=False).stdout):
        return
    note('virsh start -> GUEST-READY %.2f s (guest %s)' % (boot_s, marks['GUEST-READY']))
    ok(marks.get('HOSTNAME') == 'imgtest-vm2' and marks.get('NET', '').startswith(GUEST_IP),
       'libvirt: DHCP address and hostname', read(slog))
    r = h.run_argv(ssh_argv(GUEST_IP, kh, 'hostname'), check=False, timeout=60,
                   env={'SSHPASS': PASSWORD})
    ok(r.returncode == 0 and r.stdout.strip() == 'imgtest-vm2',
       'libvirt: ssh from the host with password, pinned key', r.stdout + r.stderr)
    t = time.monotonic()
    h.run('virsh -q shutdown imgtest-vm2')
    off = wait_for(lambda: 'shut off' in h.run('virsh domstate imgtest-vm2',
                                                  check=False).stdout, 20, 0.05)
    ok(off, 'libvirt: virsh shutdown (ACPI) -> shut off in %.2f s' % (time.monotonic() - t),
       h.run('virsh domstate imgtest-vm2', check=False).stdout + read(slog)[-800:])
    h.run('virsh -q destroy imgtest-vm2 2>/dev/null; virsh -q undefine imgtest-vm2', check=False)


def part_httpserve(images, work, cl):
    import bed as bedmod
    import httpserve
    b = bedmod.Bed()
    cl.add(b.close)
    h = b.add_host('imghttp')
    base = httpserve.serve(h, images)
    cl.add(httpserve.stop, h)
    ok(re.match(r'^http://%s:\d+$' % re.escape(h.ip), base), 'httpserve: serve() -> %s' % base)
    t = time.monotonic()
    r = h.run('python3 -c "import hashlib,sys,urllib.request; '
              'print(hashlib.sha256(urllib.request.urlopen(sys.argv[1]).read()).hexdigest())" '
              '%s/test-guest.qcow2' % base, check=False, timeout=60)
    want = read(os.path.join(images, 'test-guest.qcow2.sha256')).split()[:1]
    ok(r.returncode == 0 and r.stdout.split() == want,
       'httpserve: GET test-guest.qcow2 inside the host, sha256 matches (%.2f s)'
       % (time.monotonic() - t), r.stdout + r.stderr)
    with urllib.request.urlopen(base + '/test-guest.hostkey.pub', timeout=5) as u:
        body = u.read().decode()
    ok(body.startswith('ssh-ed25519 '), 'httpserve: reachable from the root namespace too')
    base2 = httpserve.serve(h, images)
    ok(base2 != base, 'httpserve: a second server gets another port (%s)' % base2)
    httpserve.stop(h)
    ok(h.run('ss -Hltn | grep -c ":%s " || true' % base.rsplit(':', 1)[1]).stdout.strip() == '0'
       and h.run('ss -Hltn | grep -c ":%s " || true'
                 % base2.rsplit(':', 1)[1]).stdout.strip() == '0',
       'httpserve: stop() ends the servers')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', default=os.path.join(REPO, 'build', 'images'))
    ap.add_argument('--no-libvirt', action='store_true')
    ap.add_argument('--no-httpserve', action='store_true')
    ap.add_argument('--no-vr', action='store_true')
    a = ap.parse_args()
    images = os.path.abspath(a.images)
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root')
        return 0
    missing = [c for c in ('qemu-system-x86_64', 'qemu-img', 'dnsmasq', 'sshpass', 'ssh', 'ip')
               if not shutil.which(c)]
    if missing:
        print('1..1\nnot ok 1 - tools missing: %s (make deps)' % ' '.join(missing))
        return 1

    reap_stale()
    work = tempfile.mkdtemp(prefix='%s-%d-' % (TAG, os.getpid()))
    cl = Cleanup()
    cl.add(shutil.rmtree, work, True)
    atexit.register(cl.run)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))
    try:
        pub = check_image(images)
        if pub:
            part_qemu(images, pub, work, cl)
            if a.no_libvirt:
                skip('libvirt part', '--no-libvirt')
            elif not shutil.which('libvirtd'):
                skip('libvirt part', 'libvirtd not installed')
            else:
                part_libvirt(images, pub, work, cl)
        if not a.no_httpserve and pub:
            part_httpserve(images, work, cl)
        if a.no_vr:
            skip('VR image', '--no-vr')
        else:
            part_vr(images, work, cl)
    except Exception as e:
        import traceback
        ok(False, 'no exception', traceback.format_exc())
        del e
    finally:
        cl.run()
    left = [l for l in sh(['ip', 'netns', 'list'], check=False).stdout.splitlines()
            if l.startswith('%s-%d' % (TAG, os.getpid()))]
    ok(not left and not os.path.exists(work), 'cleanup: nothing left behind', left)
    print('1..%d' % _n[0])
    return 1 if _failed[0] else 0


if __name__ == '__main__':
    sys.exit(main())

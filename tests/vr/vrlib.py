"""vrlib.py: a virtual router in network namespaces, for tests/vr and
tests/bench/vr-bench.sh.  Python 3 standard library only; root.

Topology (every name carries a per-run prefix; nothing leaves the machine:
no namespace has a route out, the public side is TEST-NET 198.51.100.0/24):

    PUB netns  198.51.100.100, .101 (clients), .200 (a "public" server)
       | veth u0 <-> r-pub (52:54:00:5e:01:01)
    ROUTER netns: kvmstack-vr --stdio runs here (public NIC r-pub, private
       | NIC r-priv 52:54:00:5e:02:01); nothing else is configured in it
       | veth r-priv <-> s-r
    SW netns: bridge br0 (the private L2), legs s-r, s-p, s-d
       | veth s-p <-> p0                 | veth s-d <-> d0 (52:54:00:5e:02:09)
    PRIV netns 10.0.0.5, 10.0.0.6      DHCP netns (no address: udhcpc)
       (backends), default via 10.0.0.1

Topology.create() builds it, Topology.destroy() removes every namespace
and kills every process started through it (also on failure: use it as a
context manager).  VrProc speaks the protocol to kvmstack-vr over pipes.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
HERE = Path(__file__).resolve().parent
NETUTIL = str(HERE / 'netutil.py')

PUB_MAC = '52:54:00:5e:01:01'
PRIV_MAC = '52:54:00:5e:02:01'
DHCP_MAC = '52:54:00:5e:02:09'
VR_PUB = '198.51.100.2'
VR_PUB_GW = '198.51.100.1'
VR_PRIV = '10.0.0.1'
CLIENT1 = '198.51.100.100'
CLIENT2 = '198.51.100.101'
PUB_SERVER = '198.51.100.200'
BACKEND1 = '10.0.0.5'
BACKEND2 = '10.0.0.6'
DHCP_IP = '10.0.0.9'


# TAP for one test file (each file is its own process): ok() numbers and
# prints a result, with the tail of 'diag' under a failure; plan() ends
# the file and gives its exit status.
_tap = {'n': 0, 'failed': 0}


def ok(cond, desc, diag=None):
    _tap['n'] += 1
    if not cond:
        _tap['failed'] += 1
    print('%s %d - %s' % ('ok' if cond else 'not ok', _tap['n'], desc),
          flush=True)
    if not cond and diag is not None:
        for line in str(diag).rstrip().splitlines()[-40:]:
            print('#   ' + line, flush=True)
    return cond


def plan():
    print('1..%d' % _tap['n'], flush=True)
    return 1 if _tap['failed'] else 0


def stats(reply):
    """The 'stats' of a vr.apply reply ({} for a problem)."""
    return reply.get('result', {}).get('stats', {})


def run_in_topology(tag, run, **kw):
    """A test file's main: run(t) in a Topology named after 'tag' and this
    process, destroyed whatever happens; then the TAP plan."""
    t = Topology('%s%d' % (tag, os.getpid()), **kw)
    try:
        run(t)
    finally:
        t.destroy()
    return plan()


def vr_binary():
    build = os.environ.get('KVMSTACK_BUILD', 'build')
    return str((REPO / build / 'kvmstack-vr').resolve())


def sh(*args, check=True, ns=None, timeout=60, input=None):
    """Runs a command (argv), optionally inside netns 'ns'; returns its
    CompletedProcess (text).  Raises on failure when 'check'."""
    argv = list(args)
    if ns:
        argv = ['ip', 'netns', 'exec', ns] + argv
    p = subprocess.run(argv, capture_output=True, text=True,
                       timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (
            ' '.join(argv), p.returncode, (p.stderr or p.stdout).strip()))
    return p


class VrProc:
    """kvmstack-vr --stdio in a namespace, with a frame reader."""

    def __init__(self, ns, run_dir, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, 'a')
        e = dict(os.environ)
        e.setdefault('KVMSTACK_VR_LOG', 'info')
        e.update(env or {})
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', ns, vr_binary(), '--stdio', '--run-dir',
             run_dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, env=e, bufsize=0)
        self.next_id = 1
        self.buf = b''
        self.init = self.read_frame(10)

    def read_frame(self, timeout=60):
        """The next frame (a dict); raises on EOF or timeout."""
        import select
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no frame from kvmstack-vr')
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise EOFError('kvmstack-vr closed its stdout (exit %s)'
                                   % self.proc.poll())
                self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def send(self, frame):
        data = json.dumps(frame, separators=(',', ':')).encode() + b'\n'
        self.proc.stdin.write(data)
        return len(data)

    def call(self, method, params, timeout=120):
        """Sends a call; returns (reply frame, seconds from the first byte
        written to the reply read)."""
        i = self.next_id
        self.next_id += 1
        data = json.dumps({'kind': 'call', 'id': i, 'method': method,
                           'params': params},
                          separators=(',', ':')).encode() + b'\n'
        t0 = time.monotonic()
        self.proc.stdin.write(data)
        while True:
            f = self.read_frame(timeout)
            if f.get('kind') == 'reply' and f.get('id') == i:
                return f, time.monotonic() - t0

    def apply(self, config, timeout=120):
        reply, secs = self.call('vr.apply', config, timeout)
        return reply, secs

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Topology:
    """The namespaces above; 'prefix' keeps parallel runs apart."""

    def __init__(self, prefix=None, dhcp_leg=True):
        self.prefix = prefix or 'kvr%d' % os.getpid()
        p = self.prefix
        self.pub = p + '-pub'
        self.router = p + '-r'
        self.sw = p + '-sw'
        self.priv = p + '-priv'
        self.dhcp = p + '-dh'
        self.dhcp_leg = dhcp_leg
        self.namespaces = []
        self.procs = []
        self.vr = None
        self.tmp = tempfile.mkdtemp(prefix='kvmstack-vr-test.')
        self.run_dir = os.path.join(self.tmp, 'run')

    # -- building -------------------------------------------------------
    def _ns(self, name):
        sh('ip', 'netns', 'add', name)
        self.namespaces.append(name)
        sh('ip', '-n', name, 'link', 'set', 'lo', 'up')

    def _veth(self, ns_a, a, ns_b, b, mac_a=None):
        sh('ip', '-n', ns_a, 'link', 'add', a, 'type', 'veth', 'peer',
           'name', b, 'netns', ns_b)
        if mac_a:
            sh('ip', '-n', ns_a, 'link', 'set', a, 'address', mac_a)
        sh('ip', '-n', ns_a, 'link', 'set', a, 'up')
        sh('ip', '-n', ns_b, 'link', 'set', b, 'up')

    def create(self):
        self.destroy_namespaces(quiet=True)
        for ns in (self.pub, self.router, self.sw, self.priv):
            self._ns(ns)
        self._veth(self.router, 'r-pub', self.pub, 'u0', PUB_MAC)
        sh('ip', '-n', self.sw, 'link', 'add', 'br0', 'type', 'bridge')
        sh('ip', '-n', self.sw, 'link', 'set', 'br0', 'up')
        self._veth(self.router, 'r-priv', self.sw, 's-r', PRIV_MAC)
        self._veth(self.priv, 'p0', self.sw, 's-p')
        legs = ['s-r', 's-p']
        if self.dhcp_leg:
            self._ns(self.dhcp)
            self._veth(self.dhcp, 'd0', self.sw, 's-d', DHCP_MAC)
            legs.append('s-d')
        for leg in legs:
            sh('ip', '-n', self.sw, 'link', 'set', leg, 'master', 'br0')
        for a in (CLIENT1, CLIENT2, PUB_SERVER):
            sh('ip', '-n', self.pub, 'addr', 'add', a + '/24', 'dev', 'u0')
        for a in (BACKEND1, BACKEND2):
            sh('ip', '-n', self.priv, 'addr', 'add', a + '/24', 'dev', 'p0')
        sh('ip', '-n', self.priv, 'route', 'add', 'default', 'via', VR_PRIV)
        # Addresses appear at once (no duplicate address detection for
        # IPv4), but let the bridge ports reach forwarding state.
        sh('ip', 'netns', 'exec', self.sw, 'sh', '-c',
           'echo 0 > /sys/class/net/br0/bridge/forward_delay || true')
        return self

    def start_vr(self, env=None):
        os.makedirs(self.run_dir, exist_ok=True)
        self.vr = VrProc(self.router, self.run_dir,
                         os.path.join(self.tmp, 'kvmstack-vr.log'), env)
        return self.vr

    def spawn(self, ns, argv, **kw):
        """Starts a long-running process in 'ns'; killed by destroy()."""
        p = subprocess.Popen(['ip', 'netns', 'exec', ns] + argv,
                             stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def server(self, ns, kind, addr, ports, name, ready_timeout=10):
        """A netutil.py TCP/UDP server on 'addr':'ports' answering 'name'
        and the port it was reached on; waits until it listens."""
        ready = os.path.join(self.tmp, 'ready-%s-%s-%s-%s' % (
            ns, kind, addr, ports[0]))
        if os.path.exists(ready):
            os.unlink(ready)
        p = self.spawn(ns, [sys.executable, NETUTIL, 'serve-' + kind, addr,
                            ','.join(str(x) for x in ports), name, ready],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_timeout
        while not os.path.exists(ready):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('server %s %s:%s did not start'
                                   % (kind, addr, ports))
            time.sleep(0.01)
        return p

    def netutil(self, ns, *args, timeout=20):
        """Runs a netutil.py client in 'ns'; returns its stdout, stripped
        ('ERR ...' on failure)."""
        p = sh(sys.executable, NETUTIL, *[str(a) for a in args], ns=ns,
               check=False, timeout=timeout)
        return (p.stdout.strip() or ('ERR ' + p.stderr.strip()))

    def nft(self, *args, check=True):
        return sh('nft', *args, ns=self.router, check=check).stdout

    # -- teardown ---------------------------------------------------------
    def destroy_namespaces(self, quiet=False):
        for ns in (self.dhcp, self.priv, self.sw, self.router, self.pub):
            subprocess.run(['ip', 'netns', 'del', ns],
                           capture_output=True)

    def destroy(self):
        if self.vr:
            try:
                self.vr.stop()
            except Exception:
                pass
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                p.wait(5)
            except Exception:
                pass
        # Anything else still running in our namespaces (dnsmasq dies with
        # kvmstack-vr, udhcpc exits; this catches leftovers).
        for ns in self.namespaces:
            r = subprocess.run(['ip', 'netns', 'pids', ns],
                               capture_output=True, text=True)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        self.destroy_namespaces()
        # kvmstack-vr's log (and dnsmasq's) outlive the run in
        # tests/artifacts/vr-<prefix without its pid>*.log.
        art = REPO / 'tests' / 'artifacts'
        label = self.prefix.rstrip('0123456789')
        for src, name in ((os.path.join(self.tmp, 'kvmstack-vr.log'), ''),
                          (os.path.join(self.run_dir, 'dnsmasq.log'),
                           '-dnsmasq')):
            if os.path.exists(src):
                try:
                    art.mkdir(parents=True, exist_ok=True)
                    with open(src, 'rb') as f:
                        data = f.read()
                    (art / ('vr-%s%s.log' % (label, name))) \
                        .write_bytes(data)
                except OSError:
                    pass
        subprocess.run(['rm', '-rf', self.tmp])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False


def base_config(gen=1, rules=(), dhcp=None, snat=True, vips=('198.51.100.10',
                                                             '198.51.100.11')):
    """A configuration for the topology above."""
    return {
        'gen': gen,
        'interfaces': [
            {'mac': PUB_MAC, 'role': 'public', 'address': VR_PUB + '/24',
             'gateway': VR_PUB_GW},
            {'mac': PRIV_MAC, 'role': 'private', 'address': VR_PRIV + '/24',
             'gateway': None},
        ],
        'vips': list(vips),
        'snat': [{'source': '10.0.0.0/24', 'to': VR_PUB}] if snat else [],
        'dhcp': dhcp,
        'portForwarding': list(rules),
    }


def rule(uuid, vip, proto, vports, gip, gports, cidr=None):
    return {'uuid': uuid, 'vip': vip, 'protocol': proto,
            'vipPorts': list(vports), 'guestIp': gip,
            'guestPorts': list(gports), 'allowedCidr': cidr}


def delta(gen, base, add=(), dels=(), vips_add=(), vips_del=()):
    """The params of a delta vr.apply (proto.h): {"delta":D}."""
    return {'delta': {'gen': gen, 'baseGen': base,
                      'portForwardingAdd': list(add),
                      'portForwardingDel': list(dels),
                      'vipsAdd': list(vips_add),
                      'vipsDel': list(vips_del)}}

#!/usr/bin/env python3
"""kvmstack system-test bed: "KVM hosts" on this machine, each in its own
network namespace with its own sshd, private mounts and its own PID namespace.

Python 3 stdlib only; must run as root.  Recipes: /work/shared/TESTBED.md.

    from bed import Bed                   # sys.path += ['tests/bed']
    with Bed() as b:                      # or: from tests.bed import Bed
        h1 = b.add_host('host1')          # up in ~0.05 s
        h2 = b.add_host('host2', with_libvirt=True)
        h1.ip, h1.port, h1.password       # '10.250.N.2', 22, 'testpass'
        h1.known_hosts_line               # '10.250.N.2 ssh-ed25519 AAAA...'
        h1.run('ip -br addr').stdout      # shell command inside the host
        h1.ssh('hostname')                # real SSH login (sshpass + ssh)
        h1.link_down(); h1.link_up()      # network cut / repair
    # every namespace, process, link, route and file of the bed is gone here

Network rule: every address lives inside namespaces the bed creates; the root
namespace only holds 10.250.N.1/30 on its end of each host link (host side
10.250.N.2/30); no namespace gets a default route; ip_forward is never touched.
While any bed is alive, the root namespace also holds the route
`unreachable 10.250.0.0/16 metric 4095`, so a connection to a host that has
been torn down (or whose link is down) fails locally and can never follow the
default route off the machine.

Names: netns `ksbed-<pid>-h<N>`, root-side veth `ksb<pid>h<N>` (peer `eth0`
inside), work dir `/tmp/ksbed-<pid>-*`, where <pid> is the owning Python
process.  `python3 tests/bed/bed.py cleanup` removes leftovers of runs whose
owner is dead (`--all`: of every run).  Bed() does the same at start.  If the
owner dies even by SIGKILL, each host's PID 1 stops itself (it watches a pipe
from the owner), so only netns, veths and the dir remain for that cleanup.
KSBED_DEBUG=1 prints per-host teardown timings.

API (what system tests use):
  Bed(workdir=None, reap_stale=True)   context manager; .dir, .hosts {name: Host}
    .add_host(name, password='testpass', with_libvirt=False, private_dirs=())
    .close()                           also via __exit__, atexit and SIGTERM
  Host attributes: name ip gw_ip port(22) password host_pub_key_line
    ('ssh-ed25519 AAAA...') fingerprint ('SHA256:...', as ssh-keygen -lf)
    known_hosts_line known_hosts_path dir init_pid netns veth startup_seconds
  Host methods: run(cmd, check=True, input=None, timeout=30, env=None),
    run_argv(argv, ...), ssh(cmd, ..., key=None, known_hosts=None, password=None),
    ssh_argv(cmd, key=None, known_hosts=None), port_open(timeout=1),
    regenerate_host_key(), stop_sshd(kill_sessions=False), start_sshd(),
    restart_sshd(), sshd_running(), link_down(), link_up(), authorized_keys(),
    pids_matching(pattern), kill_matching(pattern, sig='TERM', wait=True), alive()

Facts a test must know:
  * run() enters the host's mount, UTS, net and PID namespaces; cwd is /.
    A command that starts a background process must redirect its output
    (`cmd >/dev/null 2>&1 &`), or run() waits for EOF until its timeout.
  * pids from pids_matching()/kill_matching() and from pid files inside the
    host are namespace-local; never os.kill() them from the test.
  * The host shares the machine's file system except its private /etc/shadow,
    /run, /root (Debian's stock dot files) and /root/.ssh (+ /etc/libvirt, /var/{lib,log,cache}/libvirt with
    with_libvirt, + private_dirs).  /tmp, /etc/kvmstack, /usr ... are shared
    by all hosts and the root namespace unless listed in private_dirs.
  * with_libvirt prepares the private libvirt dirs and qemu.conf (user root,
    security_driver none, no cgroup controllers) but starts no daemon; the code
    under test runs `virtlogd -d && libvirtd -d` over SSH (no systemd here).
    The qemu capabilities cache (first virsh domcapabilities/define: ~1 s
    probe) is seeded from another libvirt host of this bed, else from
    /var/cache/libvirt, else from $KSBED_CAPS_CACHE (default
    /var/tmp/ksbed-cache/qemu-capabilities, refreshed at close; '' = off).

CLI:  bed.py cleanup [--all] | bed.py list | bed.py up [NHOSTS] [--libvirt]
"""

import atexit
import base64
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ['Bed', 'Host', 'BedError', 'HostCommandError', 'cleanup',
           'leftovers', 'PREFIX']

PREFIX = 'ksbed'                      # netns / dir / process tag prefix
VETH_PREFIX = 'ksb'                   # root-side veth: ksb<pid>h<N> (<= 15 chars)
NET = '10.250'                        # host N: 10.250.N.0/30
SAFETY_ROUTE = NET + '.0.0/16'
SAFETY_METRIC = '4095'
LOCK_FILE = '/run/lock/ksbed.lock' if os.path.isdir('/run/lock') else '/tmp/ksbed.lock'
CAPS_CACHE = os.environ.get('KSBED_CAPS_CACHE', '/var/tmp/ksbed-cache/qemu-capabilities')
DEBUG = bool(os.environ.get('KSBED_DEBUG'))
HERE = os.path.dirname(os.path.abspath(__file__))
HOSTINIT = os.path.join(HERE, 'hostinit.sh')
# What kvmstack (its playbooks and agent) writes on a KVM or backup-storage
# host; a test host given these as private_dirs keeps it to itself instead
# of writing it onto the machine the tests run on.
KVMSTACK_DIRS = ('/etc/sysctl.d', '/etc/kvmstack', '/var/lib/kvmstack',
                 '/var/log/kvmstack', '/backupStorage')
CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

NETNS_RE = re.compile(r'^%s-(\d+)-h(\d+)$' % PREFIX)
VETH_RE = re.compile(r'^%s(\d+)h(\d+)$' % VETH_PREFIX)
TAG_RE = re.compile(r'%s-(\d+)-' % PREFIX)

# (path, package) checked at Bed() time
REQUIRED = [
    ('ip', 'iproute2'), ('/usr/sbin/sshd', 'openssh-server'),
    ('/usr/lib/openssh/sftp-server', 'openssh-sftp-server'),
    ('ssh', 'openssh-client'), ('ssh-keygen', 'openssh-client'),
    ('unshare', 'util-linux'), ('nsenter', 'util-linux'),
    ('mount', 'mount'), ('openssl', 'openssl'),
    ('pgrep', 'procps'), ('pkill', 'procps'), ('ps', 'procps'), ('bash', 'bash'),
]

LIBVIRT_QEMU_CONF = '''\
# kvmstack test bed: private qemu.conf of this host
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
'''
LIBVIRTD_CONF = 'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
VIRTLOGD_CONF = 'log_outputs = "3:file:/var/log/libvirt/virtlogd.log"\n'


class BedError(RuntimeError):
    """The bed could not be built (missing package, host did not start...)."""


class HostCommandError(subprocess.CalledProcessError):
    def __init__(self, host, returncode, cmd, output, stderr):
        super().__init__(returncode, cmd, output, stderr)
        self.host = host

    def __str__(self):
        err = self.stderr if isinstance(self.stderr, str) else \
            (self.stderr or b'').decode(errors='replace')
        return '%s: command %r exited %s: %s' % (
            self.host, self.cmd, self.returncode, err.strip()[-2000:])


# ---------------------------------------------------------------- helpers

def _sh(argv, check=True, input=None, timeout=30):
    r = subprocess.run(argv, input=input, capture_output=True, text=True,
                       timeout=timeout, env={'PATH': CLEAN_PATH, 'LANG': 'C.UTF-8'})
    if check and r.returncode != 0:
        raise BedError('%s failed (%d): %s' % (' '.join(argv), r.returncode,
                                                r.stderr.strip()))
    return r


class _Lock:
    """System-wide lock (flock) around subnet allocation and cleanup."""

    def __enter__(self):
        self.f = open(LOCK_FILE, 'a')
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _pid_alive(pid):
    return os.path.exists('/proc/%d' % pid)


def _proc_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return None


def _gone(pid):
    st = _proc_state(pid)
    return st is None or st in ('Z', 'X')


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().split(b'\0')
    except OSError:
        return []


def _fingerprint(pub_line):
    blob = base64.b64decode(pub_line.split()[1])
    return 'SHA256:' + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip('=')


def _sshd_version():
    r = subprocess.run(['/usr/sbin/sshd', '-V'], capture_output=True, text=True)
    m = re.search(r'OpenSSH_(\d+)\.(\d+)', r.stdout + r.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _wait(pred, timeout, interval=0.005):
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


# ---------------------------------------------------------------- leftovers

def _netns_list():
    r = _sh(['ip', 'netns', 'list'], check=False)
    return [l.split()[0] for l in r.stdout.splitlines() if l.strip()]


def _link_list():
    r = _sh(['ip', '-o', 'link', 'show'], check=False)
    out = []
    for l in r.stdout.splitlines():
        parts = l.split(':', 2)
        if len(parts) > 1:
            out.append(parts[1].strip().split('@')[0])
    return out


def _used_subnets():
    used = set()
    for n in _netns_list():
        m = NETNS_RE.match(n)
        if m:
            used.add(int(m.group(2)))
    for n in _link_list():
        m = VETH_RE.match(n)
        if m:
            used.add(int(m.group(2)))
    r = _sh(['ip', '-4', '-o', 'addr', 'show'], check=False)
    for m in re.finditer(r'inet %s\.(\d+)\.' % re.escape(NET), r.stdout):
        used.add(int(m.group(1)))
    r = _sh(['ip', '-4', 'route', 'show'], check=False)
    for m in re.finditer(r'^(?:\S+ )?%s\.(\d+)\.\d+/(\d+)' % re.escape(NET), r.stdout, re.M):
        if int(m.group(2)) > 16:
            used.add(int(m.group(1)))
    return used


def leftovers():
    """Everything of any bed that exists now: dict kind -> list of
    (owner_pid, thing)."""
    out = {'netns': [], 'links': [], 'procs': [], 'dirs': []}
    for n in _netns_list():
        m = NETNS_RE.match(n)
        if m:
            out['netns'].append((int(m.group(1)), n))
    for n in _link_list():
        m = VETH_RE.match(n)
        if m:
            out['links'].append((int(m.group(1)), n))
    me = os.getpid()
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) == me:
            continue
        text = b' '.join(_cmdline(int(d))).decode(errors='replace')
        m = TAG_RE.search(text)     # hostinit.sh DIR TAG, sshd -f DIR/..., ip netns exec TAG
        if m:
            out['procs'].append((int(m.group(1)), int(d)))
    tmp = tempfile.gettempdir()
    for d in os.listdir(tmp):
        m = re.match(r'^%s-(\d+)-' % PREFIX, d)
        if m and os.path.isdir(os.path.join(tmp, d)):
            out['dirs'].append((int(m.group(1)), os.path.join(tmp, d)))
    return out


def _safety_route(add):
    if add:
        _sh(['ip', 'route', 'replace', 'unreachable', SAFETY_ROUTE, 'metric', SAFETY_METRIC],
            check=False)
    else:
        _sh(['ip', 'route', 'del', 'unreachable', SAFETY_ROUTE, 'metric', SAFETY_METRIC],
            check=False)


def _drop_safety_route_if_unused():
    if not any(VETH_RE.match(n) for n in _link_list()) and \
            not any(NETNS_RE.match(n) for n in _netns_list()):
        _safety_route(False)


def cleanup(all_runs=False, verbose=False):
    """Remove netns, links, processes and dirs of beds whose owner process is
    dead (all_runs=True: of every bed, also live ones).  Returns what it
    removed as a list of strings."""
    removed = []
    me = os.getpid()

    def stale(owner):
        return all_runs or (owner != me and not _pid_alive(owner))

    with _Lock():
        lo = leftovers()
        pids = [p for o, p in lo['procs'] if stale(o)]
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
                removed.append('process %d' % p)
            except OSError:
                pass
        _wait(lambda: all(_gone(p) for p in pids), 5)
        for o, n in lo['netns']:
            if stale(o):
                _sh(['ip', 'netns', 'del', n], check=False)
                removed.append('netns ' + n)
        for o, n in lo['links']:
            if stale(o):
                _sh(['ip', 'link', 'del', n], check=False)
                removed.append('link ' + n)
        for o, d in lo['dirs']:
            if stale(o):
                shutil.rmtree(d, ignore_errors=True)
                removed.append('dir ' + d)
        _drop_safety_route_if_unused()
    if verbose:
        for r in removed:
            print('removed', r)
    return removed


# ---------------------------------------------------------------- Host

class Host:
    """One test host.  Attributes: name, ip, gw_ip, port, password,
    host_pub_key_line, fingerprint, known_hosts_line, known_hosts_path, dir,
    init_pid (root-ns pid of its PID 1), netns, veth, with_libvirt."""

    def __init__(self, bed, name, n, password, with_libvirt, private_dirs):
        self.bed = bed
        self.name = name
        self.n = n
        self.ip = '%s.%d.2' % (NET, n)
        self.gw_ip = '%s.%d.1' % (NET, n)
        self.port = 22
        self.password = password
        self.with_libvirt = with_libvirt
        self.private_dirs = list(private_dirs)
        self.netns = '%s-%d-h%d' % (PREFIX, bed.owner, n)
        self.veth = '%s%dh%d' % (VETH_PREFIX, bed.owner, n)
        self.dir = os.path.join(bed.dir, 'hosts', name)
        self.known_hosts_path = os.path.join(self.dir, 'known_hosts')
        self.init_pid = None
        self.host_pub_key_line = None
        self.fingerprint = None
        self._proc = None
        self._closed = False

    def __repr__(self):
        return '<Host %s %s init=%s>' % (self.name, self.ip, self.init_pid)

    # -- construction ------------------------------------------------------
    def _keyfile(self):
        return os.path.join(self.dir, 'ssh', 'ssh_host_ed25519_key')

    def _genkey(self):
        k = self._keyfile()
        for f in (k, k + '.pub'):
            if os.path.exists(f):
                os.unlink(f)
        _sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@' + self.name, '-f', k])
        with open(k + '.pub') as f:
            self.host_pub_key_line = ' '.join(f.read().split()[:2])
        self.fingerprint = _fingerprint(self.host_pub_key_line)
        with open(self.known_hosts_path, 'w') as f:
            f.write(self.known_hosts_line + '\n')

    @property
    def known_hosts_line(self):
        return '%s %s' % (self.ip, self.host_pub_key_line)

    def _prepare(self):
        d = self.dir
        for sub in ('ssh', 'run/sshd', 'rootssh'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(os.path.join(d, 'rootssh'), 0o700)
        os.chmod(os.path.join(d, 'run/sshd'), 0o755)
        self._genkey()
        # shadow copy with our root password, bind-mounted over /etc/shadow
        # inside the host only (the real root password is never changed)
        hashed = self.bed._hash_password(self.password)
        with open('/etc/shadow') as f:
            lines = f.read().splitlines()
        root = 'root:%s:19000:0:99999:7:::' % hashed
        lines = [root if l.startswith('root:') else l for l in lines]
        if root not in lines:
            lines.insert(0, root)
        fd = os.open(os.path.join(d, 'shadow'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        extra = 'PerSourcePenalties no\n' if self.bed._sshd_ver >= (9, 8) else ''
        with open(os.path.join(d, 'ssh', 'sshd_config'), 'w') as f:
            f.write(f'''# kvmstack test bed host {self.name}
ListenAddress {self.ip}
Port 22
HostKey {self._keyfile()}
PidFile {d}/sshd.pid
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
UseDNS no
StrictModes no
MaxStartups 100
MaxSessions 100
PrintMotd no
PrintLastLog no
X11Forwarding no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
{extra}''')
        # root's home is private, as on a fresh Debian host: this
        # machine's /root/.bashrc runs `pyenv init`, which every SSH
        # session would run too (slow), and a session killed during its
        # `pyenv rehash` leaves a lock that stalls every later login for
        # 60 s (seen: a test killing sshd sessions broke the tiers after
        # it).  Debian's stock dot files; .ssh is the per-host directory.
        home = os.path.join(d, 'roothome')
        os.makedirs(os.path.join(home, '.ssh'), mode=0o700)
        os.chmod(home, 0o700)
        for dot in ('bashrc', 'profile'):
            src = '/usr/share/base-files/dot.' + dot
            if os.path.exists(src):
                shutil.copy(src, os.path.join(home, '.' + dot))
        binds = [(os.path.join(d, 'shadow'), '/etc/shadow'),
                 (os.path.join(d, 'run'), '/run'),
                 (home, '/root'),
                 (os.path.join(d, 'rootssh'), '/root/.ssh')]
        if not os.path.isdir('/root/.ssh'):
            os.makedirs('/root/.ssh', mode=0o700, exist_ok=True)
        if self.with_libvirt:
            binds += self._prepare_libvirt()
        for i, p in enumerate(self.private_dirs):
            src = os.path.join(d, 'private', str(i))
            os.makedirs(src)
            if p.rstrip('/') == '/tmp' or p.startswith('/tmp/'):
                os.chmod(src, 0o1777)
            binds.append((src, p))
        for _, dst in binds:
            if os.path.realpath(d + '/').startswith(os.path.realpath(dst).rstrip('/') + '/'):
                raise BedError('host dir %s would be hidden by the private %s; '
                               'use Bed(workdir=...) elsewhere' % (d, dst))
            if not os.path.exists(dst):
                raise BedError('bind target %s does not exist' % dst)
        with open(os.path.join(d, 'binds'), 'w') as f:
            for src, dst in binds:
                if ' ' in src or ' ' in dst:
                    raise BedError('paths with blanks are not supported: %r %r' % (src, dst))
                f.write('%s %s\n' % (src, dst))
        with open(os.path.join(d, 'host.env'), 'w') as f:
            f.write('NAME=%s\nIP=%s\nPLEN=30\n' % (shlex.quote(self.name), self.ip))

    def _prepare_libvirt(self):
        if not os.path.isdir('/etc/libvirt') or not shutil.which('libvirtd', path=CLEAN_PATH):
            raise BedError('with_libvirt=True needs libvirt installed (/etc/libvirt and '
                           'libvirtd missing): apt-get install libvirt-daemon-system '
                           'libvirt-clients qemu-system-x86 qemu-utils')
        d = self.dir
        for sub in ('etc-libvirt/qemu/networks', 'lib-libvirt/images', 'lib-libvirt/qemu',
                    'log-libvirt/qemu', 'log-libvirt/lxc', 'cache-libvirt/qemu/capabilities'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        e = os.path.join(d, 'etc-libvirt')
        with open(os.path.join(e, 'qemu.conf'), 'w') as f:
            f.write(LIBVIRT_QEMU_CONF)
        with open(os.path.join(e, 'libvirtd.conf'), 'w') as f:
            f.write(LIBVIRTD_CONF)
        with open(os.path.join(e, 'virtlogd.conf'), 'w') as f:
            f.write(VIRTLOGD_CONF)
        if os.path.isdir('/etc/libvirt/nwfilter'):
            shutil.copytree('/etc/libvirt/nwfilter', os.path.join(e, 'nwfilter'))
        # pre-seed the qemu capabilities cache (skips a 1.6-7.5 s first-connect probe)
        dst = os.path.join(d, 'cache-libvirt/qemu/capabilities')
        for src in self.bed._caps_sources():
            xs = [x for x in os.listdir(src) if x.endswith('.xml')] if os.path.isdir(src) else []
            if xs:
                for x in xs:
                    shutil.copy2(os.path.join(src, x), dst)
                break
        binds = []
        for sub, target in (('etc-libvirt', '/etc/libvirt'), ('lib-libvirt', '/var/lib/libvirt'),
                            ('log-libvirt', '/var/log/libvirt'),
                            ('cache-libvirt', '/var/cache/libvirt')):
            os.makedirs(target, exist_ok=True)
            binds.append((os.path.join(d, sub), target))
        return binds

    def _start(self, timeout=10):
        r, w = os.pipe()
        self._watch_w = w
        env = {'PATH': CLEAN_PATH, 'LANG': 'C.UTF-8', 'HOME': '/root',
               'KSBED_WATCH_FD': str(r)}
        out = open(os.path.join(self.dir, 'init.out'), 'wb')
        try:
            self._proc = subprocess.Popen(
                ['ip', 'netns', 'exec', self.netns, 'unshare', '--mount', '--pid', '--uts',
                 '--fork', '--kill-child', '--mount-proc', '--propagation', 'private',
                 'bash', HOSTINIT, self.dir, self.netns],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=(r,), env=env, cwd='/')
        finally:
            os.close(r)
            out.close()
        # ip netns exec execs unshare, whose only child is the host's PID 1
        children = '/proc/%d/task/%d/children' % (self._proc.pid, self._proc.pid)

        def child():
            try:
                with open(children) as f:
                    c = f.read().split()
            except OSError:
                c = []
            if c:
                self.init_pid = int(c[0])
                return True
            return self._proc.poll() is not None
        _wait(child, timeout)
        if not self.init_pid:
            raise BedError('%s: host init did not start: %s' % (self.name, self._diag()))
        if not self._wait_sshd(timeout):
            raise BedError('%s: sshd did not come up: %s' % (self.name, self._diag()))

    def _diag(self):
        msg = []
        for f in ('failed', 'init.out', 'sshd.log'):
            p = os.path.join(self.dir, f)
            if os.path.exists(p):
                with open(p, errors='replace') as fh:
                    t = fh.read().strip()
                if t:
                    msg.append('%s: %s' % (f, t[-1500:]))
        if self._proc and self._proc.poll() is not None:
            msg.append('init exited with %s' % self._proc.returncode)
        return '; '.join(msg) or 'no diagnostics'

    def _wait_sshd(self, timeout):
        pidfile = os.path.join(self.dir, 'sshd.pid')

        def ok():
            if os.path.exists(os.path.join(self.dir, 'failed')) or self._proc.poll() is not None:
                return True
            try:
                return os.path.getsize(pidfile) > 0
            except OSError:
                return False
        _wait(ok, timeout)
        try:
            return os.path.getsize(pidfile) > 0 and self._proc.poll() is None
        except OSError:
            return False

    # -- running things inside ------------------------------------------------
    def _nsenter(self):
        if self._closed or self.init_pid is None:
            raise BedError('%s is not running' % self.name)
        return ['nsenter', '-t', str(self.init_pid), '-m', '-u', '-n', '-p', '--']

    def run_argv(self, argv, check=True, input=None, timeout=30, env=None):
        """Run argv inside the host (its mount, UTS, net and PID namespaces;
        cwd is /).  Returns subprocess.CompletedProcess (text unless input is
        bytes).  A command that leaves a background process must redirect
        its output, or this waits for EOF until the timeout."""
        e = {'PATH': CLEAN_PATH, 'LANG': 'C.UTF-8', 'HOME': '/root', 'USER': 'root',
             'LOGNAME': 'root', 'SHELL': '/bin/bash'}
        if env:
            e.update(env)
        text = not isinstance(input, bytes)
        r = subprocess.run(self._nsenter() + list(argv), input=input, capture_output=True,
                           text=text, timeout=timeout, env=e, cwd='/')
        if check and r.returncode != 0:
            raise HostCommandError(self.name, r.returncode, argv, r.stdout, r.stderr)
        return r

    def run(self, cmd, check=True, input=None, timeout=30, env=None):
        """Run a /bin/sh command line inside the host; see run_argv."""
        return self.run_argv(['/bin/sh', '-c', cmd], check=check, input=input,
                             timeout=timeout, env=env)

    def ssh_argv(self, cmd=None, key=None, known_hosts=None, extra=()):
        """argv for a real OpenSSH login as root (host key pinned with
        StrictHostKeyChecking=yes).  Password login through sshpass (password
        in $SSHPASS, see ssh()) unless key= (a private key file) is given."""
        argv = ['ssh', '-p', str(self.port), '-o', 'StrictHostKeyChecking=yes',
                '-o', 'UserKnownHostsFile=' + (known_hosts or self.known_hosts_path),
                '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5',
                '-o', 'LogLevel=ERROR', '-o', 'ServerAliveInterval=5',
                '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-F', '/dev/null']
        if key:
            argv = argv + ['-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key,
                           '-o', 'PreferredAuthentications=publickey']
        else:
            argv = ['sshpass', '-e'] + argv + ['-o', 'PreferredAuthentications=password',
                                               '-o', 'PubkeyAuthentication=no']
        argv += list(extra) + ['root@' + self.ip]
        if cmd is not None:
            argv.append(cmd)
        return argv

    def ssh(self, cmd, check=True, input=None, timeout=30, key=None, known_hosts=None,
            password=None):
        """Run cmd on the host over real SSH from the root namespace."""
        if not key and not shutil.which('sshpass'):
            raise BedError('sshpass is missing: apt-get install -y sshpass')
        env = dict(os.environ, SSHPASS=password or self.password)
        r = subprocess.run(self.ssh_argv(cmd, key=key, known_hosts=known_hosts),
                           input=input, capture_output=True, text=not isinstance(input, bytes),
                           timeout=timeout, env=env)
        if check and r.returncode != 0:
            raise HostCommandError(self.name, r.returncode, 'ssh ' + cmd, r.stdout, r.stderr)
        return r

    def port_open(self, timeout=1.0):
        """True if a TCP connect to ip:port succeeds within timeout."""
        try:
            with socket.create_connection((self.ip, self.port), timeout=timeout):
                return True
        except OSError:
            return False

    # -- sshd / host key -----------------------------------------------------
    def sshd_running(self):
        r = self.run('P=$(cat %s/sshd.pid 2>/dev/null) && [ -n "$P" ] && '
                     'kill -0 "$P" && ! grep -q "^State:.*Z" /proc/$P/status'
                     % shlex.quote(self.dir), check=False)
        return r.returncode == 0

    def stop_sshd(self, kill_sessions=False, timeout=5):
        """Stop the listening sshd (open sessions stay, as with a real
        `service ssh stop`, unless kill_sessions=True)."""
        q = shlex.quote(self.dir)
        self.run('P=$(cat %s/sshd.pid 2>/dev/null); [ -n "$P" ] && kill "$P" 2>/dev/null; '
                 'i=0; while [ -n "$P" ] && [ -d /proc/$P ] && '
                 '! grep -q "^State:.*Z" /proc/$P/status 2>/dev/null && [ $i -lt %d ]; '
                 'do sleep 0.01; i=$((i+1)); done; rm -f %s/sshd.pid; true'
                 % (q, int(timeout * 100), q), timeout=timeout + 5)
        if kill_sessions:
            self.kill_matching('^sshd: ', sig='KILL')

    def start_sshd(self, timeout=10):
        q = shlex.quote(self.dir)
        self.run('/usr/sbin/sshd -f %s/ssh/sshd_config -E %s/sshd.log' % (q, q))
        if not self._wait_sshd(timeout):
            raise BedError('%s: sshd did not come up: %s' % (self.name, self._diag()))

    def restart_sshd(self):
        self.stop_sshd()
        self.start_sshd()

    def regenerate_host_key(self):
        """New ed25519 host key; sshd is restarted if it was running.
        Updates host_pub_key_line, fingerprint, known_hosts_line/_path."""
        running = self.sshd_running()
        if running:
            self.stop_sshd()
        self._genkey()
        if running:
            self.start_sshd()

    # -- network -------------------------------------------------------------
    def link_down(self):
        """Cut the host's link (its eth0 goes down; the root side loses
        carrier).  Packets to the host are silently dropped: open TCP
        connections stall, new connects time out."""
        _sh(['ip', '-n', self.netns, 'link', 'set', 'eth0', 'down'])

    def link_up(self):
        """Restore the link.  Neighbour (ARP) entries on both ends are flushed,
        so a connect right after link_up does not fail with 'No route to
        host' from an ARP resolution that started while the link was down."""
        _sh(['ip', '-n', self.netns, 'link', 'set', 'eth0', 'up'])
        _sh(['ip', 'neigh', 'flush', 'dev', self.veth], check=False)
        _sh(['ip', '-n', self.netns, 'neigh', 'flush', 'dev', 'eth0'], check=False)

    # -- inspection ----------------------------------------------------------
    def authorized_keys(self):
        """Text of root's ~/.ssh/authorized_keys as sshd inside sees it
        ('' if missing)."""
        return self.run('cat /root/.ssh/authorized_keys 2>/dev/null; true').stdout

    def pids_matching(self, pattern):
        """Namespace-local pids (as seen inside the host) of processes whose
        full command line matches the pgrep -f regex.  The bed's own
        processes (PID 1 = hostinit.sh and its owner watcher) are excluded."""
        r = self.run_argv(['pgrep', '-f', '--', pattern], check=False)
        pids = [p for p in r.stdout.split() if p.strip().isdigit() and p != '1']
        if not pids:
            return []
        r = self.run_argv(['ps', '-o', 'pid=,args=', '-p', ','.join(pids)], check=False)
        return [int(l.split()[0]) for l in r.stdout.splitlines()
                if l.strip() and HOSTINIT not in l]

    def kill_matching(self, pattern, sig='TERM', wait=True, timeout=5):
        """pkill -f inside the host's PID namespace (never PID 1).  Returns the
        namespace-local pids signalled; with wait=True waits until they are gone."""
        pids = self.pids_matching(pattern)
        if not pids:
            return []
        ps = ' '.join(map(str, pids))
        self.run('kill -s %s %s 2>/dev/null; true' % (shlex.quote(sig), ps))
        if wait:
            self.run('i=0; for p in %s; do while [ -d /proc/$p ] && ! grep -q "^State:.*Z" '
                     '/proc/$p/status 2>/dev/null && [ $i -lt %d ]; do sleep 0.01; '
                     'i=$((i+1)); done; done; true' % (ps, int(timeout * 100)),
                     timeout=timeout + 5)
        return pids

    def alive(self):
        return (not self._closed and self._proc is not None and self._proc.poll() is None)

    # -- teardown --------------------------------------------------------------
    def _teardown(self):
        if self._closed:
            return
        self._closed = True
        errors = []
        t0 = time.monotonic()
        try:
            if self._proc is not None:
                if self._proc.poll() is None and self.init_pid:
                    try:
                        os.kill(self.init_pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=5)
                    errors.append('%s: init did not die in 10 s' % self.name)
        except Exception as e:  # keep tearing down
            errors.append('%s: %s' % (self.name, e))
        if getattr(self, '_watch_w', None) is not None:
            try:
                os.close(self._watch_w)
            except OSError:
                pass
            self._watch_w = None
        t1 = time.monotonic()
        if self.with_libvirt:
            self.bed._save_caps(self)
        _sh(['ip', 'netns', 'del', self.netns], check=False)
        t2 = time.monotonic()
        _sh(['ip', 'link', 'del', self.veth], check=False)
        self.teardown_times = (t1 - t0, t2 - t1, time.monotonic() - t2)
        if DEBUG:
            print('bed: %s teardown kill %.3f netns del %.3f link del %.3f s'
                  % ((self.name,) + self.teardown_times), file=sys.stderr)
        return errors


# ---------------------------------------------------------------- Bed

_open_beds = set()
_serial = [0]
_glock = threading.Lock()


def _close_all():
    for b in list(_open_beds):
        try:
            b.close()
        except Exception as e:  # pragma: no cover
            print('bed: cleanup at exit failed: %s' % e, file=sys.stderr)


atexit.register(_close_all)


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


class Bed:
    """A set of test hosts; a context manager.  close() (also run by
    __exit__, atexit and SIGTERM) kills every host's PID 1, deletes the
    netns, veths and the work dir."""

    def __init__(self, workdir=None, reap_stale=True):
        if os.geteuid() != 0:
            raise BedError('the test bed needs root')
        missing = sorted({pkg for path, pkg in REQUIRED
                          if not (os.path.exists(path) if path.startswith('/')
                                  else shutil.which(path, path=CLEAN_PATH))})
        if missing:
            raise BedError('missing packages for the test bed: %s '
                           '(apt-get install -y %s)' % (', '.join(missing), ' '.join(missing)))
        self.owner = os.getpid()
        self.hosts = {}
        self._lock = threading.Lock()
        self._pwcache = {}
        self._closed = False
        self._sshd_ver = _sshd_version()
        if reap_stale:
            cleanup()
        with _glock:
            _serial[0] += 1
            serial = _serial[0]
        if workdir is None:
            self.dir = tempfile.mkdtemp(prefix='%s-%d-%d-' % (PREFIX, self.owner, serial))
            self._own_dir = True
        else:
            self.dir = os.path.abspath(workdir)
            os.makedirs(self.dir, exist_ok=True)
            self._own_dir = False
        os.makedirs(os.path.join(self.dir, 'hosts'), exist_ok=True)
        _open_beds.add(self)
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_term)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _hash_password(self, pw):
        if pw not in self._pwcache:
            r = _sh(['openssl', 'passwd', '-6', '-stdin'], input=pw + '\n')
            self._pwcache[pw] = r.stdout.strip()
        return self._pwcache[pw]

    def _caps_sources(self):
        live = [os.path.join(h.dir, 'cache-libvirt/qemu/capabilities')
                for h in list(self.hosts.values()) if h is not None and h.with_libvirt]
        return live + [p for p in ('/var/cache/libvirt/qemu/capabilities', CAPS_CACHE) if p]

    def _save_caps(self, host):
        src = os.path.join(host.dir, 'cache-libvirt/qemu/capabilities')
        try:
            xs = [x for x in os.listdir(src) if x.endswith('.xml')]
        except OSError:
            return
        if not xs:
            return
        for dst in (CAPS_CACHE,):
            if not dst:
                continue
            try:
                os.makedirs(dst, exist_ok=True)
                for x in xs:
                    tmp = os.path.join(dst, '.%s.%d' % (x, os.getpid()))
                    shutil.copy2(os.path.join(src, x), tmp)
                    os.replace(tmp, os.path.join(dst, x))
            except OSError:
                pass

    def add_host(self, name, password='testpass', with_libvirt=False, private_dirs=()):
        """Start a host; returns Host once its sshd listens on ip:22.
        private_dirs: extra absolute directories (made when missing; see
        KVMSTACK_DIRS) that get an empty private
        copy inside this host (e.g. '/etc/kvmstack', '/var/lib/kvmstack')."""
        if self._closed:
            raise BedError('bed is closed')
        if not re.match(r'^[A-Za-z0-9][A-Za-z0-9-]{0,62}$', name):
            raise BedError('bad host name %r (letters, digits, -)' % name)
        for p in private_dirs:
            if not p.startswith('/'):
                raise BedError('private dir %r must be an absolute path' % p)
            # The private copy is mounted over it: the directory must exist
            # out here too (it stays empty on a machine that had none).
            os.makedirs(p, exist_ok=True)
        with self._lock:
            if name in self.hosts:
                raise BedError('host %s exists already' % name)
            self.hosts[name] = None
        t0 = time.monotonic()
        host = None
        try:
            with _Lock():
                used = _used_subnets()
                n = next((i for i in range(1, 255) if i not in used), None)
                if n is None:
                    raise BedError('no free 10.250.N.0/30 subnet')
                host = Host(self, name, n, password, with_libvirt, private_dirs)
                self.hosts[name] = host
                _safety_route(True)
                _sh(['ip', '-batch', '-'], input='\n'.join([
                    'netns add %s' % host.netns,
                    'link add %s type veth peer name eth0 netns %s' % (host.veth, host.netns),
                    'addr add %s/30 dev %s' % (host.gw_ip, host.veth),
                ]) + '\n')
                try:
                    with open('/proc/sys/net/ipv6/conf/%s/disable_ipv6' % host.veth, 'w') as f:
                        f.write('1')
                except OSError:
                    pass
                _sh(['ip', 'link', 'set', host.veth, 'up'])
            os.makedirs(host.dir)
            host._prepare()
            host._start()
        except BaseException:
            if host is not None:
                host._teardown()
                shutil.rmtree(host.dir, ignore_errors=True)
            with self._lock:
                self.hosts.pop(name, None)
            raise
        host.startup_seconds = time.monotonic() - t0
        return host

    def close(self):
        """Tear everything down; safe to call twice.  Raises BedError at the
        end if something could not be removed."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for h in list(self.hosts.values()):
            if h is not None:
                errors += h._teardown() or []
        with _Lock():
            _drop_safety_route_if_unused()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            shutil.rmtree(os.path.join(self.dir, 'hosts'), ignore_errors=True)
        _open_beds.discard(self)
        # verify
        left = [n for n in _netns_list() for h in self.hosts.values()
                if h is not None and n == h.netns]
        left += [n for n in _link_list() for h in self.hosts.values()
                 if h is not None and n == h.veth]
        if left:
            errors.append('left behind: %s' % ', '.join(left))
        if errors:
            raise BedError('; '.join(errors))


# ---------------------------------------------------------------- CLI

def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog='bed.py', description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    c = sub.add_parser('cleanup', help='remove leftovers of dead runs')
    c.add_argument('--all', action='store_true', help='also of live runs (nothing may be running)')
    sub.add_parser('list', help='list leftovers of all runs')
    u = sub.add_parser('up', help='start hosts and wait for Ctrl-C (debugging)')
    u.add_argument('n', type=int, nargs='?', default=1)
    u.add_argument('--libvirt', action='store_true')
    a = ap.parse_args(argv)
    if a.cmd == 'cleanup':
        removed = cleanup(all_runs=a.all, verbose=True)
        print('cleanup: removed %d item(s)' % len(removed))
        return 0
    if a.cmd == 'list':
        for kind, items in leftovers().items():
            for owner, thing in items:
                print('%-6s owner=%d%s %s' % (kind, owner, '' if _pid_alive(owner) else '(dead)',
                                              thing))
        return 0
    if a.cmd == 'up':
        with Bed() as b:
            for i in range(1, a.n + 1):
                h = b.add_host('host%d' % i, with_libvirt=a.libvirt)
                print('%s: ip=%s init_pid=%d up in %.3f s  fingerprint %s\n  enter: nsenter -t %d '
                      '-m -u -n -p bash\n  ssh:   SSHPASS=%s %s'
                      % (h.name, h.ip, h.init_pid, h.startup_seconds, h.fingerprint, h.init_pid,
                         h.password, ' '.join(map(shlex.quote, h.ssh_argv()))))
            print('Ctrl-C to tear down')
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        return 0
    return 2


if __name__ == '__main__':
    sys.exit(_main(sys.argv[1:]))

#!/usr/bin/env python3
"""Self-test of the kvmstack test bed (tests/bed/bed.py).  Prints TAP and
exits non-zero on failure.  Needs root; installs sshpass if missing.

    python3 tests/bed/selftest.py
"""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bed  # noqa: E402

PLAN = 17
_n = [0]
_failed = [0]


def ok(cond, desc, diag=None):
    _n[0] += 1
    print('%sok %d - %s' % ('' if cond else 'not ', _n[0], desc), flush=True)
    if not cond:
        _failed[0] += 1
        if diag:
            for line in str(diag).strip().splitlines()[-20:]:
                print('#   ' + line)
    return cond


def skip(desc, why):
    _n[0] += 1
    print('ok %d - %s # SKIP %s' % (_n[0], desc, why), flush=True)


def note(msg):
    print('# ' + msg, flush=True)


def sha(path):
    try:
        with open(path, 'rb') as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def ssh(host, cmd, known_hosts, password=None, key=None, timeout=20):
    """Real OpenSSH client, host key pinned; returns CompletedProcess."""
    argv = ['ssh', '-F', '/dev/null', '-p', str(host.port),
            '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=' + known_hosts,
            '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5',
            '-o', 'LogLevel=ERROR']
    env = dict(os.environ)
    if key:
        argv += ['-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key]
    else:
        argv = ['sshpass', '-e'] + argv + ['-o', 'PubkeyAuthentication=no',
                                           '-o', 'PreferredAuthentications=password']
        env['SSHPASS'] = password if password is not None else host.password
    argv += ['root@' + host.ip, cmd]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def write_kh(path, host):
    with open(path, 'w') as f:
        f.write('%s %s\n' % (host.ip, host.host_pub_key_line))
    return path


def connect_fails_within(ip, port, limit):
    t = time.monotonic()
    try:
        with socket.create_connection((ip, port), timeout=limit):
            return False, time.monotonic() - t, 'connected'
    except OSError as e:
        return True, time.monotonic() - t, str(e)


def prefix_traces(pid):
    """Everything on the machine that carries this run's prefix."""
    tag, veth = '%s-%d-' % (bed.PREFIX, pid), '%s%dh' % (bed.VETH_PREFIX, pid)
    out = []
    ns = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True).stdout
    out += ['netns ' + l for l in ns.splitlines() if tag in l]
    links = subprocess.run(['ip', '-o', 'link'], capture_output=True, text=True).stdout
    out += ['link ' + l.split(':')[1].strip() for l in links.splitlines() if veth in l]
    ps = subprocess.run(['ps', '-eo', 'pid=,args='], capture_output=True, text=True).stdout
    out += ['proc ' + l.strip() for l in ps.splitlines()
            if tag in l and 'ps -eo' not in l]
    out += ['dir ' + d for d in os.listdir('/tmp') if d.startswith(tag)]
    return out


def main():
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root')
        return 0
    if not shutil.which('sshpass'):
        subprocess.run(['apt-get', 'install', '-y', '-qq', 'sshpass'],
                       stdout=subprocess.DEVNULL, env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
    print('1..%d' % PLAN, flush=True)
    me = os.getpid()
    shadow_before = sha('/etc/shadow')
    ak_before = sha('/root/.ssh/authorized_keys')
    fwd_before = open('/proc/sys/net/ipv4/ip_forward').read()
    t0 = time.monotonic()
    b = bed.Bed()
    tmp = os.path.join(b.dir, 'selftest')
    os.makedirs(tmp)
    try:
        # 1 two hosts at once
        t = time.monotonic()
        h1 = b.add_host('host1')
        h2 = b.add_host('host2', password='other-pass')
        up = time.monotonic() - t
        ok(h1.alive() and h2.alive() and h1.port_open() and h2.port_open() and h1.ip != h2.ip,
           'two hosts up at once (%s, %s) in %.3f s (%.3f + %.3f)'
           % (h1.ip, h2.ip, up, h1.startup_seconds, h2.startup_seconds))

        # 2 network rule
        routes = h1.run('ip -4 route; ip -6 route').stdout + h2.run('ip -4 route').stdout
        probe = h1.run('ip route get 192.0.2.1 2>&1; ip route get 8.8.8.8 2>&1', check=False).stdout
        safety = subprocess.run(['ip', '-4', 'route', 'show', 'type', 'unreachable'],
                                capture_output=True, text=True).stdout
        ok('default' not in routes and 'via' not in probe and 'unreachable' in probe.lower()
           and open('/proc/sys/net/ipv4/ip_forward').read() == fwd_before
           and bed.SAFETY_ROUTE in safety,
           'no default route in hosts, root ip_forward untouched, safety route %s present'
           % bed.SAFETY_ROUTE, routes + probe + safety)

        # 3, 4 password login with a pinned host key, per host
        for h in (h1, h2):
            kh = write_kh(os.path.join(tmp, 'kh-' + h.name), h)
            t = time.monotonic()
            r = ssh(h, 'hostname; echo ok', kh)
            ok(r.returncode == 0 and r.stdout.split() == [h.name, 'ok'],
               'ssh StrictHostKeyChecking=yes + sshpass password login on %s: hostname/echo ok '
               '(%.2f s)' % (h.name, time.monotonic() - t), r.stdout + r.stderr)

        # 5 wrong password refused
        r = ssh(h2, 'true', os.path.join(tmp, 'kh-host2'), password='testpass')
        ok(r.returncode in (5, 255) and 'denied' in r.stderr.lower(),
           'wrong password refused (each host has its own password)', r.stderr)

        # 6 run()
        r1 = h1.run('hostname; pwd; cat /proc/1/cmdline | tr "\\0" " "; echo; '
                    'grep "^root:" /etc/shadow | cut -d: -f2 | cut -c1-3')
        lines = r1.stdout.splitlines()
        r2 = h1.run('exit 3', check=False)
        try:
            h1.run('echo boom >&2; exit 4')
            raised = False
        except bed.HostCommandError as e:
            raised = 'boom' in str(e) and e.returncode == 4
        inp = h1.run('cat', input='piped\n').stdout
        ok(lines[0] == 'host1' and lines[1] == '/' and 'hostinit.sh' in lines[2]
           and lines[3] == '$6$' and r2.returncode == 3 and raised and inp == 'piped\n'
           and sha('/etc/shadow') == shadow_before,
           'run(): inside the host (hostname, cwd /, own PID 1, private shadow), exit codes, '
           'input; real /etc/shadow unchanged', r1.stdout + r1.stderr)

        # 7 per-host authorized_keys, installed by a shell command over SSH
        key = os.path.join(tmp, 'id_ed25519')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key], check=True)
        pub = open(key + '.pub').read().strip()
        r = ssh(h1, "umask 077; mkdir -p ~/.ssh && echo '%s' >> ~/.ssh/authorized_keys" % pub,
                os.path.join(tmp, 'kh-host1'))
        rk1 = ssh(h1, 'echo keyok', os.path.join(tmp, 'kh-host1'), key=key)
        rk2 = ssh(h2, 'echo keyok', os.path.join(tmp, 'kh-host2'), key=key)
        ok(r.returncode == 0 and rk1.stdout.strip() == 'keyok' and rk2.returncode == 255
           and pub in h1.authorized_keys() and h2.authorized_keys() == ''
           and sha('/root/.ssh/authorized_keys') == ak_before,
           "authorized_keys is per host (key login works on host1 only; real /root/.ssh untouched)",
           r.stderr + rk1.stderr + rk2.stderr)

        # 8 fingerprint attribute
        fp = subprocess.run(['ssh-keygen', '-lf', os.path.join(tmp, 'kh-host1')],
                            capture_output=True, text=True).stdout.split()
        ok(len(fp) > 1 and fp[1] == h1.fingerprint and h1.fingerprint.startswith('SHA256:'),
           'fingerprint matches ssh-keygen -lf (%s)' % h1.fingerprint, ' '.join(fp))

        # 9 host key regeneration
        old_fp, old_kh = h1.fingerprint, os.path.join(tmp, 'kh-host1')
        t = time.monotonic()
        h1.regenerate_host_key()
        regen = time.monotonic() - t
        r_old = ssh(h1, 'echo ok', old_kh)
        r_new = ssh(h1, 'echo ok', write_kh(os.path.join(tmp, 'kh-host1-new'), h1))
        ok(h1.fingerprint != old_fp and r_old.returncode == 255
           and 'host key verification failed' in r_old.stderr.lower()
           and r_new.stdout.strip() == 'ok',
           'regenerate_host_key (%.2f s): new fingerprint, old known_hosts refused, new accepted'
           % regen, r_old.stderr + r_new.stderr)

        # 10 stop/start sshd
        h2.stop_sshd()
        refused, el, err = connect_fails_within(h2.ip, 22, 2)
        h2.start_sshd()
        r = ssh(h2, 'echo ok', os.path.join(tmp, 'kh-host2'), password='other-pass')
        ok(refused and 'refused' in err and r.stdout.strip() == 'ok',
           'stop_sshd: connection refused (%s); start_sshd: login works again' % err,
           r.stderr)

        # 11 link down / up
        kh = os.path.join(tmp, 'kh-host1-new')
        sess = subprocess.Popen(['sshpass', '-e'] + h1.ssh_argv(
            'echo started; sleep 1; echo after', known_hosts=kh)[2:],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, SSHPASS=h1.password))
        first = sess.stdout.readline().strip()
        h1.link_down()
        down, el, err = connect_fails_within(h1.ip, 22, 2)
        time.sleep(0.5)
        stalled = sess.poll() is None
        h1.link_up()
        t = time.monotonic()
        r = ssh(h1, 'echo ok', kh)
        back = time.monotonic() - t
        rest, _ = sess.communicate(timeout=30)
        ok(first == 'started' and down and el <= 2.2 and stalled and r.stdout.strip() == 'ok',
           'link_down: port unreachable (%s after %.2f s), open session stalls; link_up: '
           'login works again (%.2f s), stalled session resumes (%r)'
           % (err, el, back, rest.strip()), r.stderr)

        # 12 processes inside a host
        h1.run('sleep 4242 >/dev/null 2>&1 &')
        p1, p2 = h1.pids_matching('sleep 4242'), h2.pids_matching('sleep 4242')
        killed = h1.kill_matching('sleep 4242')
        after = h1.pids_matching('sleep 4242')
        ok(len(p1) == 1 and p2 == [] and killed == p1 and after == [] and
           h1.pids_matching('hostinit') == [] and h1.alive(),
           'pids_matching/kill_matching see only the host\'s own processes (pid %s), never PID 1'
           % p1)

        # 13, 14 libvirt host
        if os.path.isdir('/etc/libvirt') and shutil.which('libvirtd'):
            real_qemu_conf = sha('/etc/libvirt/qemu.conf')
            t = time.monotonic()
            h3 = b.add_host('host3', with_libvirt=True)
            add = time.monotonic() - t
            r0 = h3.run('grep -c "security_driver = \\"none\\"" /etc/libvirt/qemu.conf; '
                        'ls /var/log/libvirt; ls /var/cache/libvirt/qemu/capabilities | wc -l')
            v = r0.stdout.split()
            ok(v[:3] == ['1', 'lxc', 'qemu'] and sha('/etc/libvirt/qemu.conf') == real_qemu_conf,
               'with_libvirt host up in %.3f s: private /etc/libvirt (bed qemu.conf), '
               '/var/log/libvirt/{qemu,lxc}, %s seeded capabilities file(s)'
               % (add, v[3] if len(v) > 3 else '?'), r0.stdout + r0.stderr)
            kh3 = write_kh(os.path.join(tmp, 'kh-host3'), h3)
            t = time.monotonic()
            r1 = ssh(h3, 'virtlogd -d && libvirtd -d && echo started', kh3)
            boot = time.monotonic() - t
            t = time.monotonic()
            r2 = ssh(h3, 'virsh -c qemu:///system list --all --name && echo listed', kh3,
                     timeout=60)
            first = time.monotonic() - t
            ok(r1.stdout.strip() == 'started' and 'listed' in r2.stdout
               and not os.path.exists('/run/libvirt/libvirt-sock'),
               'libvirtd bootstrapped over SSH (%.2f s), first virsh over SSH %.2f s, '
               'root namespace has no libvirt socket' % (boot, first),
               r1.stdout + r1.stderr + r2.stdout + r2.stderr)
        else:
            try:
                b.add_host('host3', with_libvirt=True)
                ok(False, 'with_libvirt without libvirt raises BedError')
            except bed.BedError as e:
                ok('libvirt' in str(e), 'with_libvirt without libvirt raises a clear BedError')
            skip('libvirtd bootstrap over SSH', 'libvirt not installed')
    finally:
        t = time.monotonic()
        init_pids = [h.init_pid for h in b.hosts.values() if h]
        try:
            b.close()
            err = ''
        except bed.BedError as e:
            err = str(e)
        down = time.monotonic() - t
        note('teardown per host (kill+wait, netns del, link del): ' + ', '.join(
            '%s %s' % (h.name, '/'.join('%.3f' % x for x in getattr(h, 'teardown_times', ())))
            for h in b.hosts.values() if h))

    # 15 teardown
    traces = prefix_traces(me)
    safety = subprocess.run(['ip', '-4', 'route', 'show', 'type', 'unreachable'],
                            capture_output=True, text=True).stdout
    others = [x for x in bed.leftovers()['links'] if x[0] != me]
    ok(not err and not traces and all(not os.path.exists('/proc/%d' % p) for p in init_pids)
       and (others or bed.SAFETY_ROUTE not in safety),
       'teardown in %.3f s leaves no netns/veth/process/dir/route of this run' % down,
       err + '\n' + '\n'.join(traces))

    # 16, 17 owner killed with SIGKILL: hosts stop by themselves; cleanup CLI removes the rest
    child = subprocess.Popen([sys.executable, '-c', 'import sys, time; sys.path.insert(0, %r); '
                              'import bed; b = bed.Bed(); b.add_host("x1"); b.add_host("x2"); '
                              'print("up", flush=True); time.sleep(600)' % HERE],
                             stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline().strip()
    inits = [p for o, p in bed.leftovers()['procs'] if o == child.pid
             and b'hostinit.sh' in b''.join(bed._cmdline(p))]
    child.kill()
    child.wait()
    gone = bed._wait(lambda: all(bed._gone(p) for p in inits), 3)
    before = prefix_traces(child.pid)
    ok(line == 'up' and len(inits) >= 2 and gone and any(t.startswith('netns') for t in before),
       'owner SIGKILLed: host inits exit by themselves; netns/links/dir remain for cleanup',
       '\n'.join(before))
    r = subprocess.run([sys.executable, os.path.join(HERE, 'bed.py'), 'cleanup'],
                       capture_output=True, text=True)
    after = prefix_traces(child.pid)
    ok(r.returncode == 0 and not after,
       '`bed.py cleanup` removes leftovers of a dead run (%s)' % r.stdout.strip().splitlines()[-1],
       r.stdout + r.stderr + '\n'.join(after))
    note('total %.2f s' % (time.monotonic() - t0))
    return 1 if _failed[0] or _n[0] != PLAN else 0


if __name__ == '__main__':
    sys.exit(main())

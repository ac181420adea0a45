#!/bin/bash
# tests/bench/playbook-bench.sh: kvmstack's playbook runner against
# ansible-playbook (issue 3's benchmark; `make bench` runs it after
# tests/bench/run).  Target: kvmstack <= 25 ms per task and at least 8x
# faster than Ansible.
#
# Both tools run the same task list, tests/bench/playbook.yaml (10
# ordinary tasks), against the same test-bed host (tests/bed: a network
# namespace with its own sshd at 10.250.N.2; /etc/kvmstack-bench,
# /etc/sysctl.d private to it), both logging in as root with the same
# temporary ed25519 key and both pinning the host key:
#
#   kvmstack  build/playbook-bench (tests/bench/playbook_bench.c, linked
#             with mgmt's objects): one libssh session, and per run one
#             `exec /bin/sh` channel with the persistent shell, exactly as
#             hostmgr.c's run_playbook() does; its own facts step included
#   ansible   ansible-playbook from Debian's `ansible` package, with
#             pipelining, ControlMaster=auto and ControlPersist=60s (the
#             master connection stays up across the runs), the Python
#             interpreter given (no discovery), facts off
#             (ANSIBLE_GATHERING=explicit); then again with facts on
#
# Each tool runs once to converge, then BENCH_PLAYBOOK_RUNS (kvmstack) or
# BENCH_ANSIBLE_RUNS timed runs that must all report changed=0.  A run's
# time is its wall time (for Ansible the whole ansible-playbook command,
# start-up included, as an operator meets it); per task = median run /
# tasks.  Also shown: kvmstack with a new SSH connection and login per
# run, and Ansible's in-play time (the sum of its task durations from the
# json callback, without the ansible-playbook start-up).  A cross-check
# converges the host from scratch with Ansible and expects kvmstack's
# next run to change nothing (and kvmstack's converged state is what
# Ansible's first run sees).
#
# Prints a table (tool, runs, median wall per run, per task, ratio) and
# writes it, with the per-task details, to tests/artifacts/bench-playbook.txt.
# The targets are informational: the exit status is 0 unless the harness
# broke (a failed run, a timed run that changed something, a missing
# tool).  Nothing leaves the machine: the bed host is on 10.250.N.0/30,
# no package cache is updated unless ansible must be installed, and
# ansible-playbook contacts nothing but the host.  On the machine itself
# the bench leaves nothing: the bed cleans up on every exit, Ansible's
# config, control sockets and temporary files live in a work directory
# that is removed, and /etc/kvmstack-bench (the empty mount point of the
# host's private copy) is removed again if the bench created it.
#
# The host's /root is private too, with Debian's stock .bashrc and
# .profile: sshd starts every session with root's shell, which reads
# ~/.bashrc, and a heavy one on the machine running the bench (pyenv, ...)
# would add its cost to every Ansible task and to every kvmstack run.
# BENCH_PLAYBOOK_MACHINE_ROOT=1 keeps the machine's /root (only /root/.ssh
# private, as the bed does by default).
#
# Environment: KVMSTACK_BUILD (build), BENCH_PLAYBOOK_RUNS (20),
# BENCH_ANSIBLE_RUNS (5), BENCH_ANSIBLE_FACTS_RUNS (3; 0 skips facts on),
# BENCH_PLAYBOOK_MACHINE_ROOT (0).

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVMSTACK_BUILD:-build}

die() {
    echo "playbook-bench: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces of the test bed)"
for tool in python3 ssh ssh-keygen make; do
    command -v "$tool" >/dev/null \
        || die "'$tool' is missing (make deps)"
done

make -s -C "$ROOT" BUILD="$BUILD" "$BUILD/playbook-bench" \
    || die "cannot build $BUILD/playbook-bench"

# ansible-playbook, and python3-apt for its apt module in the host's
# /usr/bin/python3 (without it the module would try to install it at run
# time).
missing=
command -v ansible-playbook >/dev/null || missing="$missing ansible"
/usr/bin/python3 -c 'import apt' 2>/dev/null \
    || missing="$missing python3-apt"
if [ -n "$missing" ]; then
    echo "playbook-bench: installing$missing (Debian)" >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null \
        || { apt-get update -qq \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                    --no-install-recommends $missing >/dev/null; } \
        || die "cannot install$missing"
fi

exec env PB_ROOT="$ROOT" PB_DRIVER="$ROOT/$BUILD/playbook-bench" \
    PB_RUNS="${BENCH_PLAYBOOK_RUNS:-20}" \
    PB_ANSIBLE_RUNS="${BENCH_ANSIBLE_RUNS:-5}" \
    PB_FACTS_RUNS="${BENCH_ANSIBLE_FACTS_RUNS:-3}" \
    PB_MACHINE_ROOT="${BENCH_PLAYBOOK_MACHINE_ROOT:-0}" \
    python3 - <<'EOF'
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.environ['PB_ROOT']
DRIVER = os.environ['PB_DRIVER']
RUNS = int(os.environ['PB_RUNS'])
ANSIBLE_RUNS = int(os.environ['PB_ANSIBLE_RUNS'])
FACTS_RUNS = int(os.environ['PB_FACTS_RUNS'])
MACHINE_ROOT = os.environ['PB_MACHINE_ROOT'] not in ('', '0')
PLAYBOOK = os.path.join(ROOT, 'tests/bench/playbook.yaml')
ARTIFACT = os.path.join(ROOT, 'tests/artifacts/bench-playbook.txt')
BENCH_DIR = '/etc/kvmstack-bench'
SYSCTL_FILE = '/etc/sysctl.d/60-kvmstack-bench.conf'
TARGET_TASK_MS = 25.0
TARGET_RATIO = 8.0

sys.path.insert(0, os.path.join(ROOT, 'tests/bed'))
from bed import Bed  # noqa: E402

if RUNS < 1 or ANSIBLE_RUNS < 1 or FACTS_RUNS < 0:
    sys.exit('playbook-bench: BENCH_PLAYBOOK_RUNS and BENCH_ANSIBLE_RUNS '
             'must be at least 1')

report = []          # Detail lines for the artifact.


def say(msg=''):
    print(msg, flush=True)
    report.append(msg)


class BenchError(Exception):
    pass


def load():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


# ---------------------------------------------------------------- kvmstack

def kvmstack(host, ssh_dir, runs, expect_unchanged, reconnect=False,
             label='kvmstack'):
    argv = [DRIVER, '--host', host.ip, '--port', str(host.port),
            '--fingerprint', host.fingerprint, '--ssh-dir', ssh_dir,
            '--runs', str(runs)]
    if expect_unchanged:
        argv.append('--expect-unchanged')
    if reconnect:
        argv.append('--reconnect')
    argv.append(PLAYBOOK)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    report.append('$ ' + ' '.join(argv))
    for line in r.stdout.rstrip('\n').split('\n'):
        say(line)
    if r.returncode != 0:
        raise BenchError('%s: playbook-bench exited %d:\n%s%s'
                         % (label, r.returncode, r.stdout[-3000:],
                            r.stderr[-3000:]))
    line = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')][-1]
    res = {}
    for word in line.split()[1:]:
        k, _, v = word.partition('=')
        res[k] = v
    res['recap'] = line.split('recap="', 1)[1].rstrip('"')
    return {'runs': int(res['runs']), 'tasks': int(res['tasks']),
            'run_ms': float(res['median_run_ms']),
            'task_ms': float(res['median_task_ms']),
            'min_ms': float(res['min_run_ms']),
            'max_ms': float(res['max_run_ms']),
            'changed': int(res['changed']), 'recap': res['recap']}


# ---------------------------------------------------------------- ansible

def ansible_setup(work, host, key):
    cfg = os.path.join(work, 'ansible.cfg')
    for d in ('cp', 'ansible-local', 'ansible-remote', 'ansible-home'):
        os.makedirs(os.path.join(work, d), mode=0o700, exist_ok=True)
    with open(os.path.join(work, 'known_hosts'), 'w') as f:
        f.write(host.known_hosts_line + '\n')
    with open(os.path.join(work, 'inventory.ini'), 'w') as f:
        f.write('[bench]\npbbench ansible_host=%s ansible_port=%d '
                'ansible_user=root ansible_ssh_private_key_file=%s\n'
                % (host.ip, host.port, key))
    with open(cfg, 'w') as f:
        f.write('''[defaults]
inventory = {w}/inventory.ini
interpreter_python = /usr/bin/python3
host_key_checking = True
local_tmp = {w}/ansible-local
remote_tmp = {w}/ansible-remote
retry_files_enabled = False
forks = 1
nocolor = True
deprecation_warnings = False
stdout_callback = ansible.posix.json

[ssh_connection]
pipelining = True
ssh_args = -F /dev/null -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes -o UserKnownHostsFile={w}/known_hosts -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o ConnectTimeout=10
control_path = {w}/cp/%%C
'''.format(w=work))
    env = {'PATH': os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin'),
           'LANG': 'C.UTF-8', 'HOME': os.path.join(work, 'ansible-home'),
           'ANSIBLE_CONFIG': cfg,
           'ANSIBLE_HOME': os.path.join(work, 'ansible-home')}
    return env


def iso_s(s):
    return datetime.datetime.fromisoformat(s.rstrip('Z')).timestamp()


def ansible_once(env, facts):
    e = dict(env, ANSIBLE_GATHERING='implicit' if facts else 'explicit')
    t0 = time.monotonic()
    r = subprocess.run(['ansible-playbook', PLAYBOOK], capture_output=True,
                       text=True, env=e, timeout=600)
    wall = (time.monotonic() - t0) * 1000
    out = r.stdout
    try:
        doc = json.loads(out[out.index('{'):])
    except ValueError:
        raise BenchError('ansible-playbook exited %d without a json '
                         'report:\n%s%s' % (r.returncode, out[-3000:],
                                            r.stderr[-3000:]))
    stats = doc['stats'].get('pbbench', {})
    if r.returncode != 0 or stats.get('failures') or \
            stats.get('unreachable'):
        raise BenchError('ansible-playbook failed (exit %d): %s\n%s'
                         % (r.returncode, json.dumps(stats),
                            (r.stderr + out)[-3000:]))
    tasks = []
    for play in doc['plays']:
        for t in play['tasks']:
            d = t['task']['duration']
            tasks.append((t['task']['name'],
                          (iso_s(d['end']) - iso_s(d['start'])) * 1000))
    return wall, stats, tasks


def ansible(env, runs, facts, expect_unchanged, label):
    walls = []
    inplay = []
    per_task = {}
    order = []
    n = 0
    changed = 0
    stats = {}
    for i in range(runs):
        wall, stats, tasks = ansible_once(env, facts)
        work_tasks = [t for t in tasks if t[0] != 'Gathering Facts']
        n = len(work_tasks)
        walls.append(wall)
        inplay.append(sum(ms for _, ms in tasks))
        changed += stats.get('changed', 0)
        for name, ms in tasks:
            if name not in per_task:
                order.append(name)
            per_task.setdefault(name, []).append(ms)
        say('%s run %d/%d: %.2f ms wall, %.2f ms in tasks, %d tasks, '
            '%.2f ms/task, %s' % (label, i + 1, runs, wall, inplay[-1], n,
                                 wall / n, recap(stats)))
    say('%s per task, median of %d run%s:'
        % (label, runs, '' if runs == 1 else 's'))
    for name in order:
        say('  %8.2f ms  %s' % (statistics.median(per_task[name]), name))
    if expect_unchanged and changed:
        raise BenchError('%s: expected no change, but the runs changed %d '
                         'task(s)' % (label, changed))
    run_ms = statistics.median(walls)
    in_ms = statistics.median(inplay)
    return {'runs': runs, 'tasks': n, 'run_ms': run_ms, 'task_ms': run_ms / n,
            'min_ms': min(walls), 'max_ms': max(walls),
            'inplay_ms': in_ms, 'inplay_task_ms': in_ms / n,
            'changed': changed, 'recap': recap(stats)}


def recap(stats):
    return 'ok=%d changed=%d failed=%d skipped=%d' % (
        stats.get('ok', 0), stats.get('changed', 0),
        stats.get('failures', 0), stats.get('skipped', 0))


def stop_master(work, host):
    subprocess.run(['ssh', '-F', '/dev/null', '-o',
                    'ControlPath=%s/cp/%%C' % work, '-p', str(host.port),
                    '-O', 'exit', 'root@' + host.ip],
                   capture_output=True, timeout=20)


# ---------------------------------------------------------------- main

def reset_host(host):
    """Undo what the playbook did, on the host's private dirs only."""
    host.run('mountpoint -q %s && mountpoint -q /etc/sysctl.d && '
             'find %s -mindepth 1 -delete && rm -f %s && '
             'echo 0 > /proc/sys/net/ipv4/ip_forward'
             % (BENCH_DIR, BENCH_DIR, SYSCTL_FILE))


def bench(work):
    rows = []
    say('playbook-bench: %s, load average %s, %d cores'
        % (os.path.relpath(PLAYBOOK, ROOT), load(), os.cpu_count()))
    with Bed() as b:
        private = [BENCH_DIR, '/etc/sysctl.d']
        if not MACHINE_ROOT:
            private.append('/root')
        h = b.add_host('pbbench', private_dirs=private)
        # The playbook writes only where the host is private.
        h.run('mountpoint -q %s && mountpoint -q /etc/sysctl.d' % BENCH_DIR)
        if not MACHINE_ROOT:
            # A stock Debian root home: every SSH session runs root's
            # shell, which reads ~/.bashrc, and this machine's may do far
            # more than Debian's (pyenv init: ~0.3 s a session here).
            h.run('mountpoint -q /root && '
                  'cp /usr/share/base-files/dot.bashrc /root/.bashrc && '
                  'cp /usr/share/base-files/dot.profile /root/.profile && '
                  'mkdir -m 700 /root/.ssh')
        ssh_dir = os.path.join(work, 'ssh')
        os.makedirs(ssh_dir, mode=0o700)
        key = os.path.join(ssh_dir, 'id_ed25519')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C',
                        'kvmstack-playbook-bench', '-f', key], check=True)
        with open(key + '.pub') as f:
            pub = f.read()
        h.run('umask 077 && mkdir -p /root/.ssh && '
              'cat >> /root/.ssh/authorized_keys', input=pub)
        say('host %s (%s), key login for both tools, host key pinned, '
            '%s' % (h.ip, h.fingerprint,
                    "this machine's /root" if MACHINE_ROOT
                    else "root's home as on a fresh Debian"))
        env = ansible_setup(work, h, key)
        v = subprocess.run(['ansible-playbook', '--version'], env=env,
                           capture_output=True, text=True).stdout
        say('ansible: %s' % (v.splitlines() or ['?'])[0])
        try:
            say('\n== kvmstack: converge')
            first = kvmstack(h, ssh_dir, 1, False)
            say('\n== kvmstack: %d timed runs' % RUNS)
            k = kvmstack(h, ssh_dir, RUNS, True)
            rows.append(('kvmstack (persistent shell)', k))
            say('\n== kvmstack: %d timed runs, new SSH session each' % RUNS)
            kc = kvmstack(h, ssh_dir, RUNS, True, reconnect=True)
            rows.append(('kvmstack (new SSH login per run)', kc))

            say('\n== ansible-playbook: first run (on kvmstack\'s state)')
            a_first = ansible(env, 1, False, False, 'ansible')
            say('\n== ansible-playbook: %d timed runs, facts off'
                % ANSIBLE_RUNS)
            a = ansible(env, ANSIBLE_RUNS, False, True, 'ansible')
            rows.append(('ansible-playbook (facts off)', a))
            af = None
            if FACTS_RUNS:
                say('\n== ansible-playbook: %d timed runs, facts on'
                    % FACTS_RUNS)
                af = ansible(env, FACTS_RUNS, True, True, 'ansible+facts')
                rows.append(('ansible-playbook (facts on)', af))

            say('\n== cross-check: converge from scratch with Ansible, '
                'then kvmstack')
            reset_host(h)
            a_conv = ansible(env, 1, False, False, 'ansible')
            k_after = kvmstack(h, ssh_dir, 1, False, label='cross-check')
        finally:
            stop_master(work, h)
    return rows, first, a_first, a_conv, k_after, a, k, kc


def main():
    work = tempfile.mkdtemp(prefix='kvmstack-pbbench.')
    made_dir = False
    try:
        if not os.path.isdir(BENCH_DIR):
            os.mkdir(BENCH_DIR, 0o755)     # Empty mount point for the bed.
            made_dir = True
        rows, first, a_first, a_conv, k_after, a, k, kc = bench(work)
    except BenchError as e:
        print('playbook-bench: %s' % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made_dir:
            try:
                os.rmdir(BENCH_DIR)
            except OSError:
                pass

    base = k['task_ms']
    table = ['',
             '%-34s %4s %12s %10s %8s' % ('tool', 'runs', 'median/run',
                                          'per task', 'ratio'),
             '%-34s %4s %12s %10s %8s' % ('-' * 34, '----', '-' * 10,
                                          '-' * 8, '-' * 6)]
    for name, r in rows:
        table.append('%-34s %4d %9.1f ms %7.2f ms %7.1fx'
                     % (name, r['runs'], r['run_ms'], r['task_ms'],
                        r['task_ms'] / base))
    table.append('%-34s %4d %9.1f ms %7.2f ms %7.1fx'
                 % ('ansible, in-play only (facts off)', a['runs'],
                    a['inplay_ms'], a['inplay_task_ms'],
                    a['inplay_task_ms'] / base))
    worst = max(k['task_ms'], kc['task_ms'])
    ratios = [a['task_ms'] / base, a['inplay_task_ms'] / base,
              a['task_ms'] / kc['task_ms'],
              a['inplay_task_ms'] / kc['task_ms']]
    table += [
        '',
        'tasks per run: %d (the same playbook for both; kvmstack\'s times '
        'include its facts step)' % k['tasks'],
        'ratio = per task / kvmstack (persistent shell) per task; '
        '"in-play only" leaves out ansible-playbook\'s start-up',
        'kvmstack per task: %.2f ms on an open session, %.2f ms with a new '
        'SSH login per run (target <= %.0f ms): %s'
        % (base, kc['task_ms'], TARGET_TASK_MS,
           'PASS' if worst <= TARGET_TASK_MS else 'MISS'),
        'ansible-playbook (facts off) / kvmstack: %.1fx (in-play only '
        '%.1fx); against kvmstack with a new login per run %.1fx (%.1fx) '
        '(target >= %.0fx): %s'
        % tuple(ratios + [TARGET_RATIO, 'PASS' if min(ratios) >= TARGET_RATIO
                          else 'MISS']),
        'converge: kvmstack first run %s; Ansible\'s first run on '
        'kvmstack\'s state %s' % (first['recap'], a_first['recap']),
        'cross-check: Ansible from scratch %s, then kvmstack %s: %s'
        % (a_conv['recap'], k_after['recap'],
           'the tools agree' if k_after['changed'] == 0
           and a_first['changed'] == 0 else 'MISMATCH'),
        'load average at the end: %s' % load(),
    ]
    for line in table:
        say(line)
    os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
    with open(ARTIFACT, 'w') as f:
        f.write('\n'.join(report) + '\n')
    print('playbook-bench: details in %s' % os.path.relpath(ARTIFACT, ROOT))
    return 0


sys.exit(main())
EOF

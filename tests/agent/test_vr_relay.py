#!/usr/bin/env python3
"""test_vr_relay.py: the agent's virtual-router relay (hostagent/vr.c:
vr.apply, vr.status, the vr.state event), driven through the real
`kvmstack-agent --stdio` inside a test-bed host (tests/bed).  Root only;
prints TAP and exits non-zero on failure.

    python3 tests/agent/test_vr_relay.py

No VM: the bed host gets a private /var/lib/kvmstack, and this test plays
QEMU and kvmstack-vr at once: a unix stream server bound at the host's
/var/lib/kvmstack/vr/U.sock (through the bind mount's source directory),
serving one client at a time as QEMU's chardev does, that says init,
answers vr.apply with {"gen":G} or a problem, or stays silent.  The steps
run in order on one agent (each leaves the state the next one starts
from), then a second agent checks the probe that finds a kvmstack-vr that
already said its init to an earlier agent.

That peer (FakeVR) is a stand-in, and only for what the real one cannot do
on cue: a router that never says init, re-inits while a call waits, closes
mid-call or answers late.  The real path (agent, QEMU's chardev,
virtio-serial, kvmstack-vr inside the appliance) is tested beside it by
tests/vr/test_image.py and end to end by tests/e2e.  Nothing leaves this machine;
the bed removes the host at the end, pass or fail.  The agent's log goes
to tests/artifacts/agent-vr-relay.log.
"""

import json
import os
import queue
import socket
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'bed'))

from agentproc import Agent, AgentError, wait_until  # noqa: E402
from bed import Bed  # noqa: E402

ARTIFACTS = os.path.join(REPO, 'tests', 'artifacts')
ROOT = '/var/lib/kvmstack'
U0 = '0a1b2c3d4e5f40718293a4b5c6d7e8f9'     # never has a socket
U1 = '1b2c3d4e5f60718293a4b5c6d7e8f9a0'     # the main fake VR
U2 = '2c3d4e5f60718293a4b5c6d7e8f9a0b1'     # a stale socket file
U3 = '3d4e5f60718293a4b5c6d7e8f9a0b1c2'     # a second VR

_n = [0]
_failed = [0]


def ok(cond, desc, diag=None):
    _n[0] += 1
    print('%sok %d - %s' % ('' if cond else 'not ', _n[0], desc), flush=True)
    if not cond:
        _failed[0] += 1
        if diag is not None:
            for line in str(diag).strip().splitlines()[-25:]:
                print('#   ' + line, flush=True)
    return bool(cond)


def note(msg):
    for line in str(msg).splitlines():
        print('# ' + line, flush=True)


def problem_is(got, want, desc, *needles):
    problem, message = got
    good = problem == want and all(n.lower() in message.lower()
                                   for n in needles)
    return ok(good, desc, 'got %s: %s; want %s mentioning %s'
              % (problem, message, want, needles))


class FakeVR:
    """QEMU's listening end of a VR channel with kvmstack-vr behind it.
    Serves one client at a time (the next waits in the backlog), like
    QEMU's chardev socket in server mode.  Every frame received goes to
    .frames; pings are answered when .answer_pings; calls go to .handler
    (call frame -> reply frame or None for no answer)."""

    def __init__(self, path):
        self.path = path
        self.frames = queue.Queue()
        self.answer_pings = False
        self.handler = None
        self.accepts = 0
        self.conn = None
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self._lock:
                self.conn = c
                self.accepts += 1
            self._serve(c)

    def _serve(self, c):
        buf = b''
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                data = b''
            if not data:
                break
            buf += data
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                msg = json.loads(line)
                if msg.get('kind') == 'ping' and self.answer_pings:
                    self.send({'kind': 'pong', 'id': msg.get('id')})
                elif msg.get('kind') == 'call' and self.handler:
                    reply = self.handler(msg)
                    if reply is not None:
                        self.send(reply)
                self.frames.put(msg)
        with self._lock:
            if self.conn is c:
                self.conn = None
        c.close()

    def connected(self):
        with self._lock:
            return self.conn is not None

    def send(self, msg):
        data = msg if isinstance(msg, bytes) else \
            (json.dumps(msg, separators=(',', ':')) + '\n').encode()
        with self._lock:
            conn = self.conn
        if conn is None:
            raise RuntimeError('fake VR %s: no client' % self.path)
        conn.sendall(data)

    def init(self):
        self.send({'kind': 'init', 'version': 1, 'role': 'vr',
                   'capabilities': ['vr.apply']})

    def recv(self, kind, timeout=5.0):
        """The next frame of 'kind' (others are skipped), or None."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                m = self.frames.get(timeout=left)
            except queue.Empty:
                return None
            if m.get('kind') == kind:
                return m

    def drain(self):
        while not self.frames.empty():
            self.frames.get_nowait()

    def close(self, unlink=True):
        """QEMU stops: the listener and the client go, and the file."""
        for s in (self.srv, self.conn):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.srv.close()
        if unlink and os.path.exists(self.path):
            os.unlink(self.path)


def apply_ok(call):
    return {'kind': 'reply', 'id': call['id'],
            'result': {'gen': call['params'].get('gen')}}


def vr_events(ag, uuid, mark):
    return [e['data']['state'] for e in ag.events_since(mark)
            if e.get('event') == 'vr.state' and e['data'].get('uuid') == uuid]


def wait_vr_events(ag, uuid, mark, count, timeout=5.0):
    """The states of the vr.state events of 'uuid' after ag.events[mark],
    once there are 'count' of them (or fewer at the timeout)."""
    end = time.monotonic() + timeout
    while len(vr_events(ag, uuid, mark)) < count:
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            ag.recv(kind='event', timeout=left)
        except AgentError:
            if not ag.alive():
                raise
    return vr_events(ag, uuid, mark)


def config(gen):
    return {'gen': gen,
            'interfaces': [{'mac': '52:54:00:00:00:01', 'role': 'public',
                            'address': '10.250.250.10/24',
                            'gateway': '10.250.250.1'}],
            'vips': ['10.250.250.11'],
            'snat': [{'source': '192.168.100.0/24', 'to': '10.250.250.10'}],
            'dhcp': None,
            'portForwarding': [{'uuid': 'r' * 32, 'vip': '10.250.250.11',
                                'protocol': 'tcp', 'vipPorts': [2222, 2222],
                                'guestIp': '192.168.100.5',
                                'guestPorts': [22, 22],
                                'allowedCidr': None}]}


def steps_main(ag, vrdir):
    p1 = os.path.join(vrdir, U1 + '.sock')

    caps = ag.init_frame.get('capabilities', [])
    ok('vr.apply' in caps and 'vr.status' in caps,
       'init lists vr.apply and vr.status', caps)

    # Parameters.
    problem_is(ag.problem('vr.apply', {'uuid': 'xyz', 'config': {}}),
               'invalid-argument', 'args: a bad uuid is refused', 'uuid')
    problem_is(ag.problem('vr.status', {}), 'invalid-argument',
               'args: vr.status needs a uuid', 'uuid')
    problem_is(ag.problem('vr.apply', {'uuid': U1}), 'invalid-argument',
               'args: config is required', 'config')
    problem_is(ag.problem('vr.apply', {'uuid': U1, 'config': {},
                                       'timeoutMs': 0}),
               'invalid-argument', 'args: timeoutMs 0 is refused',
               'timeoutMs')

    # No socket at all.
    problem_is(ag.problem('vr.apply', {'uuid': U0, 'config': config(1)}),
               'not-found', 'absent: vr.apply without a socket is not-found',
               U0)
    st = ag.call('vr.status', {'uuid': U0})
    ok(st == {'connected': False, 'gen': None},
       'absent: vr.status says not connected', st)

    # The VR boots: QEMU listens, kvmstack-vr has not said init.
    mark = ag.event_count()
    fake = FakeVR(p1)
    ok(wait_until(3, lambda: fake.accepts == 1),
       'boot: the agent connects to the new socket within 3 s',
       ag.stderr_text(last=10))
    problem_is(ag.problem('vr.apply', {'uuid': U1, 'config': config(1)}),
               'host-unreachable', 'boot: vr.apply before init is '
               'host-unreachable', 'has not connected yet (booting?)', U1)
    st = ag.call('vr.status', {'uuid': U1})
    ok(st == {'connected': False, 'gen': None},
       'boot: vr.status says not connected', st)
    probe = fake.recv('ping', timeout=3)
    ok(probe is not None and not fake.frames.qsize(),
       'boot: nothing but one probe ping is sent before init', probe)
    ok(vr_events(ag, U1, mark) == [], 'boot: no vr.state event before init',
       ag.events_since(mark))

    # kvmstack-vr says init.
    t0 = time.monotonic()
    fake.init()
    got = wait_vr_events(ag, U1, mark, 1)
    ok(got == ['Connected'], 'init: vr.state Connected (%.0f ms)'
       % ((time.monotonic() - t0) * 1000), got)
    st = ag.call('vr.status', {'uuid': U1})
    ok(st == {'connected': True, 'gen': None},
       'init: vr.status connected, no gen yet', st)
    fake.send({'kind': 'pong', 'id': probe['id'] if probe else 1})
    time.sleep(0.1)
    ok(vr_events(ag, U1, mark) == ['Connected'],
       'init: the late pong of the probe changes nothing',
       ag.events_since(mark))

    # vr.apply relayed and answered.
    fake.handler = apply_ok
    fake.drain()
    cfg = config(7)
    res = ag.call('vr.apply', {'uuid': U1, 'config': cfg})
    call = fake.recv('call', timeout=1)
    ok(res == {'gen': 7}, 'apply: the agent returns the VR\'s result', res)
    ok(call is not None and call.get('method') == 'vr.apply'
       and call.get('params') == cfg and isinstance(call.get('id'), int),
       'apply: the VR got {"kind":"call","method":"vr.apply","params":C}',
       call)
    st = ag.call('vr.status', {'uuid': U1})
    ok(st == {'connected': True, 'gen': 7}, 'apply: vr.status gen 7', st)
    res = ag.call('vr.apply', {'uuid': U1.upper(), 'config': config(8)})
    ok(res == {'gen': 8}, 'apply: an upper-case uuid names the same VR', res)

    # The VR's own problem.
    nft_msg = 'nft: Error: syntax error, unexpected junk in line 3'
    fake.handler = lambda c: {'kind': 'reply', 'id': c['id'],
                              'problem': 'invalid-argument',
                              'message': nft_msg}
    problem_is(ag.problem('vr.apply', {'uuid': U1, 'config': config(9)}),
               'invalid-argument', 'problem: the VR\'s problem and message '
               'come back', nft_msg, U1)
    fake.handler = lambda c: {'kind': 'reply', 'id': c['id'],
                              'problem': 'no-such-problem',
                              'message': 'odd'}
    problem_is(ag.problem('vr.apply', {'uuid': U1, 'config': config(9)}),
               'internal-error', 'problem: an unknown problem name becomes '
               'internal-error', 'odd')
    st = ag.call('vr.status', {'uuid': U1})
    ok(st['gen'] == 8, 'problem: a failed apply keeps the last gen', st)

    # Pings from the VR; noise on the channel.
    fake.drain()
    fake.send({'kind': 'ping', 'id': 4242})
    pong = fake.recv('pong', timeout=2)
    ok(pong == {'kind': 'pong', 'id': 4242}, 'ping: the agent answers', pong)
    fake.send(b'garbage that is not json\n')
    fake.send({'kind': 'event', 'event': 'vr.whatever', 'data': {}})
    fake.send({'kind': 'reply', 'id': 999999, 'result': {'gen': 1000}})
    fake.send({'kind': 'call', 'id': 5, 'method': 'host.facts',
               'params': {}})
    rep = fake.recv('reply', timeout=2)
    ok(rep is not None and rep.get('id') == 5
       and rep.get('problem') == 'not-supported',
       'noise: a call from the VR gets not-supported', rep)
    fake.handler = apply_ok
    res = ag.call('vr.apply', {'uuid': U1, 'config': config(10)})
    st = ag.call('vr.status', {'uuid': U1})
    ok(res == {'gen': 10} and st == {'connected': True, 'gen': 10},
       'noise: a bad line, an event and a stray reply change nothing',
       (res, st))

    # Timeout: the VR does not answer.
    fake.handler = None
    fake.drain()
    t0 = time.monotonic()
    got = ag.problem('vr.apply', {'uuid': U1, 'config': config(11),
                                  'timeoutMs': 500})
    dt = time.monotonic() - t0
    problem_is(got, 'timeout', 'timeout: no answer within timeoutMs',
               'did not answer', U1)
    ok(0.45 <= dt < 3, 'timeout: after about 500 ms (%.2f s)' % dt)
    late = fake.recv('call', timeout=1)
    fake.send(apply_ok(late) if late else b'\n')
    fake.handler = apply_ok
    res = ag.call('vr.apply', {'uuid': U1, 'config': config(12)})
    ok(res == {'gen': 12}, 'timeout: the late reply is dropped, the next '
       'apply gets its own', res)

    # The VR reboots: kvmstack-vr says init again.
    mark = ag.event_count()
    fake.init()
    got = wait_vr_events(ag, U1, mark, 2)
    ok(got == ['Disconnected', 'Connected'],
       're-init: Disconnected, then Connected', got)
    st = ag.call('vr.status', {'uuid': U1})
    ok(st == {'connected': True, 'gen': None},
       're-init: the earlier gen is void', st)

    # A re-init while a call waits ends the call at once.
    fake.handler = None
    fake.drain()
    ag.send({'kind': 'call', 'id': 90001, 'method': 'vr.apply',
             'params': {'uuid': U1, 'config': config(13)}})
    ok(fake.recv('call', timeout=2) is not None,
       're-init: the pending call reached the VR')
    mark = ag.event_count()
    t0 = time.monotonic()
    fake.init()
    rep = ag.recv(kind='reply', id=90001, timeout=5)
    ok(rep.get('problem') == 'host-unreachable'
       and 'restarted' in rep.get('message', '')
       and time.monotonic() - t0 < 2,
       're-init: the waiting call fails host-unreachable at once', rep)
    wait_vr_events(ag, U1, mark, 2)

    # A second VR alongside, named in upper case in the calls.
    p3 = os.path.join(vrdir, U3 + '.sock')
    mark3 = ag.event_count()
    fake3 = FakeVR(p3)
    fake3.handler = lambda c: {'kind': 'reply', 'id': c['id'],
                               'result': {'gen': 300}}
    ok(wait_until(3, lambda: fake3.accepts == 1), 'two: the agent connects '
       'to a second VR')
    fake3.init()
    got = wait_vr_events(ag, U3, mark3, 1)
    ok(got == ['Connected'], 'two: Connected', got)
    fake.handler = apply_ok
    r1 = ag.call('vr.apply', {'uuid': U1, 'config': config(14)})
    r3 = ag.call('vr.apply', {'uuid': U3.upper(), 'config': config(1)})
    ok(r1 == {'gen': 14} and r3 == {'gen': 300},
       'two: each apply reaches its own VR', (r1, r3))

    # The VR stops while a call waits: QEMU closes and removes the socket.
    fake.handler = None
    fake.drain()
    ag.send({'kind': 'call', 'id': 90002, 'method': 'vr.apply',
             'params': {'uuid': U1, 'config': config(15)}})
    fake.recv('call', timeout=2)
    mark = ag.event_count()
    t0 = time.monotonic()
    fake.close()
    rep = ag.recv(kind='reply', id=90002, timeout=5)
    ok(rep.get('problem') == 'host-unreachable'
       and time.monotonic() - t0 < 2,
       'stop: the waiting call fails host-unreachable at once', rep)
    got = wait_vr_events(ag, U1, mark, 1)
    ok(got == ['Disconnected'], 'stop: vr.state Disconnected', got)
    # Until its next scan the relay may still say host-unreachable.
    got = wait_until(3, lambda: (lambda g: g[0] == 'not-found' and g)(
        ag.problem('vr.apply', {'uuid': U1, 'config': config(16)})),
        interval=0.1) or ('(none)', 'still host-unreachable after 3 s')
    problem_is(got, 'not-found', 'stop: vr.apply is then not-found', U1)
    st = ag.call('vr.status', {'uuid': U1})
    ok(st == {'connected': False, 'gen': None},
       'stop: vr.status not connected', st)
    ok(ag.call('vr.apply', {'uuid': U3, 'config': config(2)}) == {'gen': 300},
       'stop: the other VR is not disturbed')

    # The VR starts again: a new socket.
    mark = ag.event_count()
    fake = FakeVR(p1)
    fake.handler = apply_ok
    ok(wait_until(3, lambda: fake.accepts == 1),
       'restart: the agent connects to the new socket')
    problem_is(ag.problem('vr.apply', {'uuid': U1, 'config': config(1)}),
               'host-unreachable', 'restart: host-unreachable until init',
               'has not connected yet')
    fake.init()
    got = wait_vr_events(ag, U1, mark, 1)
    ok(got == ['Connected'], 'restart: Connected after init', got)
    res = ag.call('vr.apply', {'uuid': U1, 'config': config(1)})
    ok(res == {'gen': 1}, 'restart: apply works again', res)

    # QEMU closes the connection but keeps listening (its client went):
    # the agent reconnects to the same file.
    mark = ag.event_count()
    with fake._lock:
        conn = fake.conn
    conn.shutdown(socket.SHUT_RDWR)
    ok(wait_until(3, lambda: fake.accepts == 2),
       'drop: the agent reconnects to the same socket file')
    got = wait_vr_events(ag, U1, mark, 1)
    ok(got == ['Disconnected'], 'drop: Disconnected', got)

    # A stale socket file: nobody listens.
    p2 = os.path.join(vrdir, U2 + '.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p2)
    s.close()
    got = wait_until(3, lambda: (lambda g: 'cannot connect' in g[1] and g)(
        ag.problem('vr.apply', {'uuid': U2, 'config': config(1)})),
        interval=0.1) or ('(none)', 'no connect failure within 3 s')
    problem_is(got, 'host-unreachable', 'stale: a socket nobody listens on '
               'is host-unreachable', 'cannot connect', U2, 'refused')
    os.unlink(p2)
    return fake, fake3


def step_probe(host, fake):
    """An agent started while kvmstack-vr already runs (mgmt reconnected):
    no init comes; the probe ping finds it."""
    fake.answer_pings = True
    fake.handler = apply_ok
    with Agent(host=host, env={'KVMSTACK_AGENT_LOG': 'debug'}) as ag2:
        got = wait_vr_events(ag2, U1, 0, 1, timeout=5)
        ok(got == ['Connected'],
           'probe: a new agent finds a running kvmstack-vr without init',
           ag2.stderr_text(last=10))
        res = ag2.call('vr.apply', {'uuid': U1, 'config': config(21)})
        ok(res == {'gen': 21}, 'probe: apply through the new agent', res)
    save_log(ag2, 'agent-vr-relay-2.log')


def save_log(ag, name):
    """Saves the log of the exited agent 'ag' to tests/artifacts/'name';
    under `make check-asan` a sanitizer report in it is a failure."""
    time.sleep(0.3)     # the stderr reader catches up with the exit
    text = ag.stderr_text()
    try:
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, name), 'w') as f:
            f.write(text + '\n')
    except OSError:
        pass
    bad = [l for l in text.splitlines()
           if 'Sanitizer' in l or 'runtime error:' in l]
    ok(not bad, '%s: no sanitizer report' % name, '\n'.join(bad))


def main():
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root (test-bed hosts)')
        return 0
    os.makedirs(ROOT, exist_ok=True)            # the bind target
    with Bed() as bed:
        host = bed.add_host('vr1', private_dirs=[ROOT])
        vrdir = os.path.join(host.dir, 'private', '0', 'vr')
        os.makedirs(vrdir, mode=0o700)
        fakes = ()
        ag = Agent(host=host, env={'KVMSTACK_AGENT_LOG': 'debug'})
        try:
            fakes = steps_main(ag, vrdir)
        except Exception:
            ok(False, 'the steps ran to the end', traceback.format_exc()
               + '\nagent log:\n' + ag.stderr_text(last=20))
        finally:
            ag.close()
            save_log(ag, 'agent-vr-relay.log')
        if fakes:
            try:
                step_probe(host, fakes[0])
            except Exception:
                ok(False, 'the probe step ran to the end',
                   traceback.format_exc())
        for f in fakes:
            f.close()
    print('1..%d' % _n[0], flush=True)
    return 1 if _failed[0] else 0


if __name__ == '__main__':
    sys.exit(main())

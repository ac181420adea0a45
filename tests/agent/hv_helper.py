"""hv_helper.py: a minimal client of `kvmstack-agent --stdio` run inside a
test-bed host (tests/bed/), for tests/agent/test_hv.py.

    agent = Agent(host, '/work/main/build/kvmstack-agent')
    agent.init                          # the agent's init frame
    r = agent.call('vm.list')           # reply frame (dict)
    agent.result(r), agent.problem(r)
    ev = agent.wait_event(lambda e: e['event'] == 'vm.state', timeout=10)
    agent.close()

The agent runs in the host's mount, UTS, net and PID namespaces (nsenter on
the host's init), so it sees the host's private /run, /var/lib/libvirt and
libvirtd.  Frames are read by a thread; replies are matched by id and
events are queued.  Its stderr (logs) goes to a file.  Python 3 stdlib.
"""

import json
import os
import subprocess
import threading
import time

CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


class AgentError(RuntimeError):
    pass


class Agent:
    def __init__(self, host, binary, log_path, env=None, timeout=10):
        e = {'PATH': CLEAN_PATH, 'LANG': 'C.UTF-8', 'HOME': '/root',
             'KVMSTACK_AGENT_LOG': 'debug'}
        for k in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS'):
            if k in os.environ:
                e[k] = os.environ[k]
        if env:
            e.update(env)
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self.proc = subprocess.Popen(
            ['nsenter', '-t', str(host.init_pid), '-m', '-u', '-n', '-p',
             '--', binary, '--stdio'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env=e, cwd='/')
        self._cond = threading.Condition()
        self._replies = {}
        self._events = []
        self._frames = []
        self._eof = False
        self._next_id = 1
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.init = self._wait(lambda: next(
            (f for f in self._frames if f.get('kind') == 'init'), None),
            timeout)
        if self.init is None:
            raise AgentError('no init frame from the agent: %s'
                             % self.log_tail())
        self.send({'kind': 'init', 'version': 1, 'capabilities': []})

    def _read(self):
        for line in self.proc.stdout:
            try:
                f = json.loads(line)
            except ValueError:
                f = {'kind': 'garbage', 'line': line.decode(errors='replace')}
            with self._cond:
                f['_t'] = time.monotonic()
                self._frames.append(f)
                if f.get('kind') in ('reply', 'pong'):
                    self._replies[f.get('id')] = f
                elif f.get('kind') == 'event':
                    self._events.append(f)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _wait(self, pred, timeout):
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                v = pred()
                if v is not None or self._eof:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def send(self, frame):
        self.proc.stdin.write((json.dumps(frame) + '\n').encode())
        self.proc.stdin.flush()

    def call(self, method, params=None, timeout=30):
        """Sends a call; returns its reply frame (raises AgentError on
        timeout or agent exit)."""
        with self._cond:
            i = self._next_id
            self._next_id += 1
        self.send({'kind': 'call', 'id': i, 'method': method,
                   'params': params if params is not None else {}})
        r = self._wait(lambda: self._replies.pop(i, None), timeout)
        if r is None:
            raise AgentError('%s: no reply in %s s (agent %s): %s' % (
                method, timeout, 'exited' if self._eof else 'alive',
                self.log_tail()))
        return r

    def ping(self, timeout=5):
        with self._cond:
            i = self._next_id
            self._next_id += 1
        self.send({'kind': 'ping', 'id': i})
        return self._wait(lambda: self._replies.pop(i, None), timeout)

    @staticmethod
    def result(reply):
        return reply.get('result')

    @staticmethod
    def problem(reply):
        return reply.get('problem')

    def events(self):
        with self._cond:
            return list(self._events)

    def event_count(self):
        with self._cond:
            return len(self._events)

    def wait_event(self, pred, timeout=10, start=0):
        """The first event from index 'start' on that 'pred' accepts, or
        None after 'timeout' seconds."""
        return self._wait(lambda: next(
            (e for e in self._events[start:] if pred(e)), None), timeout)

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=3000):
        try:
            self._log.flush()
            with open(self.log_path, 'rb') as f:
                return f.read()[-n:].decode(errors='replace')
        except OSError:
            return ''

    def close(self, timeout=5):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()

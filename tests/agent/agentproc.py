#!/usr/bin/env python3
"""agentproc.py: run the real `kvmstack-agent --stdio` and speak its
protocol (include/kvmstack/proto.h) from a test.  Python 3 stdlib only.

    import sys; sys.path.insert(0, 'tests/agent')    # or tests/bed too
    from agentproc import Agent, AgentProblem, agent_binary, wait_until

    with Agent(host=h1) as ag:             # inside test-bed host h1
        ag.init_frame                      # the agent's init frame (dict)
        ag.call('storage.capacity', {'mountPath': p})   # -> result dict
        ag.call('vm.stop', {...}, timeout=60)
        ag.problem('net.bridge.ensure', {...})  # -> ('not-supported', msg)
        ag.send({'kind': 'ping', 'id': 7}); ag.recv(kind='pong')
        ag.ping(timeout=5)                 # -> the pong frame
        ag.events                          # every event frame seen so far
        mark = ag.event_count()            # events read so far, as a mark
        ag.events_since(mark)              # the events after the mark
        ag.wait_event('vm.state', pred=lambda d: d['state'] == 'Running',
                      start=mark)          # only events after the mark
        ag.call_raw('vm.list')             # the whole reply frame
    # agent.exit was sent; the process is gone (killed if it did not go)

    Agent()                                # runs the agent here, locally
    Agent(netns='NAME')                    # in `ip netns exec NAME`
    Agent(argv_prefix=[...])               # under any wrapper (ssh, ...)

Where the agent runs:
  host=H        tests/bed Host: `nsenter -t H.init_pid -m -u -n -p --`, so
                the agent sees the host's network, mounts (its private
                /etc/kvmstack, /var/lib/kvmstack, libvirt dirs...), PID ns.
  netns=NAME    `ip netns exec NAME` (network only; the machine's mounts).
  neither       a plain child process.
The binary is $KVMSTACK_BUILD/kvmstack-agent (default build/, relative to the
repository root) unless binary= is given; env= adds environment variables
(e.g. {'KVMSTACK_AGENT_LOG': 'debug'}, {'KVMSTACK_AGENT_CONF': path}).
log_path= also appends the agent's stderr to that file, line by line as it
comes (so it is there even when the test is killed, and is never cut).

Errors: AgentProblem (a problem reply: .problem, .message, .reply),
AgentError (timeout, agent exited, bad frame; its text ends with the
agent's last stderr lines).  Frames are read by a thread, so every wait
has a timeout and a hung agent never hangs the test.  Agent.stderr_text()
is the agent's log so far (stderr, never mixed with the protocol).

Events: .events only grows when frames are read (recv(), call(),
wait_event()...), so an event the agent sent while the test was doing
something else may still be queued; event_count() and events_since() take
in every frame already read first, so a mark taken with event_count()
splits the events at that moment.

wait_until(timeout, pred, interval) polls pred until it returns a true
value or the timeout passes, and returns its last value.
"""

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

__all__ = ['Agent', 'AgentError', 'AgentProblem', 'agent_binary',
           'wait_until', 'REPO']

REPO = Path(__file__).resolve().parent.parent.parent
CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def agent_binary():
    """$KVMSTACK_BUILD/kvmstack-agent (default build/, relative to the
    repository root) as an absolute Path."""
    b = Path(os.environ.get('KVMSTACK_BUILD') or 'build')
    b = b if b.is_absolute() else REPO / b
    return b / 'kvmstack-agent'


def wait_until(timeout, pred, interval=0.05):
    """pred()'s first true value, polling every 'interval' seconds, or its
    last (false) value once 'timeout' seconds have passed."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


class AgentError(RuntimeError):
    """The agent did not answer as the protocol says (timeout, exit, bad
    frame)."""


class AgentProblem(AgentError):
    """A problem reply: .problem ('not-supported'...), .message, .reply."""

    def __init__(self, method, reply):
        self.method = method
        self.reply = reply
        self.problem = reply.get('problem')
        self.message = reply.get('message')
        super().__init__('%s: %s: %s' % (method, self.problem, self.message))


class Agent:
    """One `kvmstack-agent --stdio` process.  Starts it and does the init
    exchange in the constructor (start=False to do it later with
    start())."""

    def __init__(self, host=None, netns=None, argv_prefix=None, binary=None,
                 env=None, timeout=15.0, start=True, version=1,
                 capabilities=(), log_path=None):
        self.binary = str(binary or agent_binary())
        if argv_prefix is not None:
            prefix = list(argv_prefix)
        elif host is not None:
            prefix = ['nsenter', '-t', str(host.init_pid), '-m', '-u', '-n',
                      '-p', '--']
        elif netns is not None:
            prefix = ['ip', 'netns', 'exec', netns]
        else:
            prefix = []
        self.argv = prefix + [self.binary, '--stdio']
        self.env = {'PATH': CLEAN_PATH, 'LANG': 'C.UTF-8', 'HOME': '/root'}
        self.env.update(env or {})
        self.timeout = timeout
        self.version = version
        self.capabilities = list(capabilities)
        self.log_path = log_path
        self.proc = None
        self.init_frame = None
        self.events = []
        self._frames = queue.Queue()
        self._stderr = []
        self._lock = threading.Lock()
        self._next_id = 1
        self._pending = []          # frames read but not yet claimed
        if start:
            self.start()

    # -- process ---------------------------------------------------------
    def start(self):
        if not os.path.exists(self.binary):
            raise AgentError('agent binary %s is missing (run make)'
                             % self.binary)
        log = open(self.log_path, 'ab') if self.log_path else None
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=self.env, cwd='/')
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(log,),
                         daemon=True).start()
        self.init_frame = self.recv(kind='init', timeout=self.timeout)
        self.send({'kind': 'init', 'version': self.version,
                   'capabilities': self.capabilities})
        return self

    def _read_stdout(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                msg = {'kind': '(bad frame)', 'raw': line.decode(
                    errors='replace')}
            self._frames.put(msg)
        self._frames.put(None)      # EOF

    def _read_stderr(self, log=None):
        for line in self.proc.stderr:
            if log is not None:
                log.write(line)
                log.flush()
            with self._lock:
                self._stderr.append(line.decode(errors='replace').rstrip())
                del self._stderr[:-2000]
        if log is not None:
            log.close()

    def stderr_text(self, last=None):
        """The agent's stderr so far (its log), the last 'last' lines."""
        with self._lock:
            lines = self._stderr[-last:] if last else list(self._stderr)
        return '\n'.join(lines)

    def _fail(self, what):
        rc = self.proc.poll() if self.proc else None
        tail = self.stderr_text(last=15)
        raise AgentError('%s%s%s' % (
            what, '' if rc is None else ' (agent exited %s)' % rc,
            ('\nagent stderr:\n' + tail) if tail else ''))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- frames ------------------------------------------------------------
    def send(self, msg):
        """Sends one frame (a dict, or a str/bytes sent as is)."""
        if isinstance(msg, dict):
            data = (json.dumps(msg, separators=(',', ':')) + '\n').encode()
        elif isinstance(msg, str):
            data = msg.encode()
        else:
            data = msg
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            self._fail('cannot write to the agent: %s' % e)

    def recv(self, kind=None, id=None, timeout=None):
        """The next frame (dict) matching kind/id; frames that do not match
        stay queued for later recv() calls, except events, which also go
        to self.events.  AgentError on timeout or agent exit."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, m in enumerate(self._pending):
                if (kind is None or m.get('kind') == kind) and \
                        (id is None or m.get('id') == id):
                    return self._pending.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail('no %s frame%s within %.1f s' % (
                    kind or 'any', '' if id is None else ' with id %s' % id,
                    timeout or self.timeout))
            try:
                m = self._frames.get(timeout=left)
            except queue.Empty:
                continue
            if m is None:
                self._frames.put(None)      # stay at EOF
                self._fail('the agent closed its stdout while waiting for '
                           'a %s frame' % (kind or 'any'))
            if m.get('kind') == 'event':
                self.events.append(m)
                if kind == 'event':
                    return m
                continue
            self._pending.append(m)

    def _take_read_frames(self):
        """Takes in every frame the reader has already read, without
        waiting: events go to self.events, the rest stay for recv()."""
        while True:
            try:
                m = self._frames.get_nowait()
            except queue.Empty:
                return
            if m is None:
                self._frames.put(None)      # stay at EOF
                return
            if m.get('kind') == 'event':
                self.events.append(m)
            else:
                self._pending.append(m)

    def event_count(self):
        """How many events the agent has sent so far (every frame already
        read is taken in first): a mark for events_since() and
        wait_event(start=)."""
        self._take_read_frames()
        return len(self.events)

    def events_since(self, mark=0):
        """A copy of the events after the first 'mark' (every frame already
        read is taken in first)."""
        self._take_read_frames()
        return list(self.events[mark:])

    def ping(self, timeout=None):
        """Sends a ping and returns the pong frame; AgentError on timeout
        or agent exit."""
        with self._lock:
            pid = self._next_id
            self._next_id += 1
        self.send({'kind': 'ping', 'id': pid})
        return self.recv(kind='pong', id=pid, timeout=timeout)

    def call_raw(self, method, params=None, timeout=None):
        """Sends a call and returns the whole reply frame."""
        with self._lock:
            cid = self._next_id
            self._next_id += 1
        self.send({'kind': 'call', 'id': cid, 'method': method,
                   'params': {} if params is None else params})
        return self.recv(kind='reply', id=cid, timeout=timeout)

    def call(self, method, params=None, timeout=None):
        """The result of a call; AgentProblem on a problem reply."""
        reply = self.call_raw(method, params, timeout)
        if 'problem' in reply:
            raise AgentProblem(method, reply)
        return reply.get('result')

    def problem(self, method, params=None, timeout=None):
        """(problem, message) of a call that must fail; AgentError if it
        succeeds."""
        reply = self.call_raw(method, params, timeout)
        if 'problem' not in reply:
            raise AgentError('%s succeeded (%r) where a problem was expected'
                             % (method, reply.get('result')))
        return reply['problem'], reply.get('message', '')

    def wait_event(self, event, pred=None, timeout=None, start=0):
        """The first event named 'event' (seen before or arriving within
        the timeout; only from self.events[start] on) whose data satisfies
        pred."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = start
        while True:
            for m in self.events[seen:]:
                if m.get('event') == event and (pred is None or
                                                pred(m.get('data') or {})):
                    return m
            seen = max(seen, len(self.events))
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail('no %s event within %.1f s' % (
                    event, timeout or self.timeout))
            try:
                self.recv(kind='event', timeout=left)
            except AgentError:
                if self.alive():
                    continue
                raise

    # -- shutdown ----------------------------------------------------------
    def close(self, timeout=5.0):
        """agent.exit, then wait; SIGKILL if it does not go.  Returns the
        exit status.  Safe to call twice."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.call_raw('agent.exit', timeout=timeout)
            except AgentError:
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

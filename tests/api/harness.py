"""harness.py: what the API tests (and tests/run's cli tier) share.

- Server: a `kvmstack serve` on a free loopback port with its database in a
  temporary directory and its stdout/stderr in tests/artifacts/<name>.log;
  killed when the harness ends, even on failure or interrupt (and by the
  kernel if the harness dies: PR_SET_PDEATHSIG).
- Client: a tiny HTTP client for /zstack/v1 (http.client, one connection
  per request) that returns status, parsed JSON body and headers.
- db_dump(): the whole SQLite inventory read through a read-only
  connection, every table's rows sorted, for "nothing changed" checks.
- Tap and Case: TAP output, one line per named check.

Python 3 standard library only.
"""

import argparse
import contextlib
import ctypes
import fnmatch
import http.client
import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
API_PREFIX = "/zstack/v1"


def build_dir():
    """The binary directory: $KVMSTACK_BUILD (default 'build'); a relative
    path is relative to the repository root."""
    b = Path(os.environ.get("KVMSTACK_BUILD") or "build")
    return b if b.is_absolute() else REPO / b


def kvmstack_bin():
    return build_dir() / "kvmstack"


def rand_uuid():
    return secrets.token_hex(16)


def free_port():
    """A free loopback TCP port: bind port 0 and let the kernel choose."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fail(AssertionError):
    pass


class EnvSkip(Exception):
    """What a step needs is not available here (e.g. no SSH server for a
    version that bootstraps hosts over SSH); reported as SKIP."""


# The real KVM test host that tests/run borrows from tests/bed for the api
# and cli tiers (the same variables as tests/cli/tutorial.sh):
#   KVMSTACK_TEST_HOST_IP, KVMSTACK_TEST_HOST_PASSWORD  its SSH address and
#       root password (AddKVMHost, AddSftpBackupStorage);
#   KVMSTACK_TEST_IMAGE_URL  a file:// URL of build/images/test-guest.qcow2,
#       the tutorial's ttylinux (the bed host shares the machine's files);
#   KVMSTACK_TEST_PUBLIC_IF  the host's spare interface for the public
#       NoVlan L2 (a veth whose peer is in the same host);
#   KVMSTACK_TEST_NFS_STANDIN  the folder whose usr/local/zstack/nfs_root
#       the host's agent bind-mounts instead of the NFS export (its
#       agent.conf nfs_mount_command): this kernel has no NFS client;
#   KVMSTACK_TEST_HOST_PID  the PID of the host's init, to look inside the
#       host (nsenter) for what the API says it did.
# Nothing else is ever contacted: without a test host the steps that need
# one skip (tests/run as root always gives one, or fails).
TEST_HOST_IP = os.environ.get("KVMSTACK_TEST_HOST_IP") or None
TEST_HOST_PASSWORD = os.environ.get("KVMSTACK_TEST_HOST_PASSWORD") or None
TEST_IMAGE_URL = os.environ.get("KVMSTACK_TEST_IMAGE_URL") or None
TEST_PUBLIC_IF = os.environ.get("KVMSTACK_TEST_PUBLIC_IF") or None
TEST_NFS_STANDIN = os.environ.get("KVMSTACK_TEST_NFS_STANDIN") or None
TEST_HOST_PID = os.environ.get("KVMSTACK_TEST_HOST_PID") or None

# The tutorial's NFS url: only ever handed to the agent's NFS stand-in.
NFS_URL = "192.168.0.212:/usr/local/zstack/nfs_root"
NFS_EXPORT = "/usr/local/zstack/nfs_root"

# Every server of the api tier (and the cli tier's): VMs under TCG (nested
# KVM hangs on this machine) and a short host ping, so that a lost agent
# shows within seconds.
SERVER_ARGS = ["--vm-domain-type", "qemu", "--host-ping-interval", "1000"]


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def need_test_host():
    """(ip, password) of the test host; EnvSkip without one."""
    if not TEST_HOST_IP or not TEST_HOST_PASSWORD:
        raise EnvSkip("no test host (KVMSTACK_TEST_HOST_IP and "
                      "KVMSTACK_TEST_HOST_PASSWORD; tests/run as root "
                      "borrows one from tests/bed)")
    return TEST_HOST_IP, TEST_HOST_PASSWORD


def need_public_if():
    if not TEST_PUBLIC_IF:
        raise Fail("KVMSTACK_TEST_PUBLIC_IF is not set: the test host needs "
                   "a spare interface for the public NoVlan L2 (tests/run "
                   "makes data0)")
    return TEST_PUBLIC_IF


class Image:
    """A local qcow2 file registered with AddImage through a file:// URL:
    .url, .path, .sha256 (from its .sha256 file), .size."""

    def __init__(self, path):
        self.path = Path(path)
        self.url = "file://" + str(self.path)
        if not self.path.is_file():
            msg = ("%s is missing: run make images (make check does)"
                   % self.path)
            if os.geteuid() == 0:
                raise Fail(msg)
            raise EnvSkip(msg)
        sums = self.path.with_name(self.path.name + ".sha256")
        check(sums.is_file(), "%s is missing: run make images" % sums)
        self.sha256 = sums.read_text().split()[0]
        self.size = self.path.stat().st_size


def test_image():
    """The tutorial's ttylinux: KVMSTACK_TEST_IMAGE_URL, by default
    build/images/test-guest.qcow2 (make images)."""
    url = TEST_IMAGE_URL or "file://%s" % (build_dir() / "images"
                                           / "test-guest.qcow2")
    check(url.startswith("file:///"), "KVMSTACK_TEST_IMAGE_URL %r is not a "
          "file:// URL: the tests download nothing from outside" % url)
    return Image(url[len("file://"):])


def vr_image():
    """The tutorial's VIRTUAL-ROUTER image: build/images/kvmstack-vr.qcow2
    (issue 5's appliance) when it was built, else the test image."""
    vr = build_dir() / "images" / "kvmstack-vr.qcow2"
    if vr.is_file():
        return Image(vr)
    return test_image()


def host_run(cmd, check_rc=True, timeout=30):
    """Runs the shell command 'cmd' inside the test host (its mount, UTS,
    net and PID namespaces, as tests/bed's Host.run does); None when the
    host cannot be entered from here (no KVMSTACK_TEST_HOST_PID)."""
    if not TEST_HOST_PID:
        return None
    r = subprocess.run(["nsenter", "-t", TEST_HOST_PID, "-m", "-u", "-n",
                        "-p", "--", "/bin/sh", "-c", cmd],
                       capture_output=True, text=True, timeout=timeout,
                       cwd="/", env={"PATH": "/usr/local/sbin:/usr/local/bin:"
                                     "/usr/sbin:/usr/bin:/sbin:/bin",
                                     "LANG": "C.UTF-8", "HOME": "/root"})
    if check_rc and r.returncode != 0:
        raise Fail("in the test host: %r exited %d: %s" % (
            cmd, r.returncode, (r.stderr or r.stdout).strip()[-500:]))
    return r


def host_domains(state=None):
    """Names (VM uuids) of the libvirt domains on the test host, all or
    only those in 'state' ('running'); None when the host cannot be
    entered from here."""
    r = host_run("virsh list --name " + ("--state-%s" % state if state
                                        else "--all"), check_rc=False)
    if r is None:
        return None
    check(r.returncode == 0, "virsh list in the test host failed: %s"
          % r.stderr.strip())
    return [n.strip() for n in r.stdout.splitlines() if n.strip()]


# ---------------------------------------------------------------- servers

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the harness dies without
    # cleaning up (SIGKILL), the kernel kills the server too.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


class Server:
    """One `kvmstack serve`.  Create, start(), use .url/.db/.password,
    stop() or kill().  All servers ever created are killed by
    Server.kill_all() (called from the harness's finally blocks)."""

    _all = []
    _lock = threading.Lock()

    def __init__(self, name, password=None, args=(), log_level="dbg"):
        self.name = name
        self.password = password or ("Adm1n-" + secrets.token_hex(8))
        self.args = list(args)
        self.log_level = log_level
        self.tmpdir = tempfile.mkdtemp(prefix="kvmstack-%s-" % name)
        self.db = os.path.join(self.tmpdir, "kvmstack.db")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log = ARTIFACTS / ("%s.log" % name)
        self.log.write_bytes(b"")
        self.proc = None
        self.port = None
        with Server._lock:
            Server._all.append(self)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, port=None, timeout=20.0):
        """Starts the server (on 'port' or a free one) and waits until it
        answers HTTP.  Retries with another port if the chosen one was
        taken in between."""
        last = None
        for attempt in range(3):
            self.port = port if (port and attempt == 0) else free_port()
            try:
                self._start_once(timeout)
                return self
            except Fail as e:
                last = e
                if self.proc and self.proc.poll() is None:
                    raise
        raise last

    def _start_once(self, timeout):
        binary = kvmstack_bin()
        check(binary.exists(), "server binary %s is missing (run make)"
              % binary)
        env = dict(os.environ)
        env["KVMSTACK_ADMIN_PASSWORD"] = self.password
        cmd = [str(binary), "serve", "--listen", "127.0.0.1:%d" % self.port,
               "--db", self.db, "--log-level", self.log_level] + self.args
        logf = open(self.log, "ab")
        logf.write(("--- harness: %s\n" % " ".join(cmd)).encode())
        logf.flush()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, env=env, cwd=self.tmpdir,
                preexec_fn=_die_with_parent)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fail("server %s exited with status %s while starting"
                           "; log tail:\n%s" % (self.name,
                                                self.proc.returncode,
                                                self.log_tail()))
            try:
                r = Client(self.url).get("/zones", auth=False, timeout=2)
                if r.status == 401:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        self.kill()
        raise Fail("server %s did not answer within %.0f s; log tail:\n%s"
                   % (self.name, timeout, self.log_tail()))

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status (kills on timeout and
        returns None)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def log_tail(self, lines=30):
        """The last 'lines' lines of the log, runs of lines that differ
        only in their timestamp (job polling) collapsed into one."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        out = []
        prev = None
        repeats = 0
        for line in text[-(lines * 20):]:
            key = line.split("|", 1)[-1]
            if key == prev:
                repeats += 1
                continue
            if repeats:
                out.append("    (%d more like the line above)" % repeats)
            out.append(line)
            prev, repeats = key, 0
        if repeats:
            out.append("    (%d more like the line above)" % repeats)
        return "\n".join(out[-lines:])

    def login(self, password=None):
        return Client(self.url).login(password or self.password)

    @classmethod
    def kill_all(cls):
        with cls._lock:
            servers = list(cls._all)
        for s in servers:
            try:
                s.cleanup()
            except Exception:
                pass


# ----------------------------------------------------------------- client

class Resp:
    def __init__(self, method, path, status, raw, headers):
        self.method = method
        self.path = path
        self.status = status
        self.raw = raw
        self.headers = headers
        try:
            self.body = json.loads(raw.decode()) if raw else None
        except ValueError:
            self.body = None

    @property
    def error(self):
        if isinstance(self.body, dict) and isinstance(
                self.body.get("error"), dict):
            return self.body["error"]
        return {}

    @property
    def inv(self):
        return (self.body or {}).get("inventory")

    @property
    def invs(self):
        return (self.body or {}).get("inventories")

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        text = self.raw.decode(errors="replace")
        if len(text) > 600:
            text = text[:600] + "..."
        return "%s %s -> %s %s" % (self.method, self.path, self.status, text)


class Client:
    def __init__(self, base, session=None, source_ip=None):
        self.base = base
        self.session = session
        self.source_ip = source_ip

    def with_session(self, session):
        return Client(self.base, session, self.source_ip)

    def request(self, method, path, body=None, raw=None, auth=True,
                ctype="application/json", headers=None, timeout=60):
        if path.startswith("http://"):
            u = urllib.parse.urlsplit(path)
            host, port = u.hostname, u.port
            target = u.path + ("?" + u.query if u.query else "")
        else:
            u = urllib.parse.urlsplit(self.base)
            host, port = u.hostname, u.port
            target = API_PREFIX + path
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        if raw is not None:
            data = raw
        if data is not None and ctype:
            hdrs["Content-Type"] = ctype
        if auth and self.session:
            hdrs["Authorization"] = "OAuth " + self.session
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(
            host, port, timeout=timeout,
            source_address=(self.source_ip, 0) if self.source_ip else None)
        try:
            conn.request(method, target, body=data, headers=hdrs)
            r = conn.getresponse()
            raw_reply = r.read()
            return Resp(method, target, r.status, raw_reply, r.getheaders())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, params=None, **kw):
        if params is not None:
            kw["body"] = {"params": params}
        return self.request("POST", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def action(self, path, action, params=None, **kw):
        return self.request("PUT", path + "/actions",
                            body={action: params or {}}, **kw)

    def login_resp(self, password, account="admin"):
        return self.put("/accounts/login", body={"logInByAccount": {
            "accountName": account, "password": password}}, auth=False)

    def login(self, password, account="admin"):
        r = self.login_resp(password, account)
        expect(r, 200)
        sid = r.inv["uuid"]
        check(isinstance(sid, str) and len(sid) == 32,
              "login returned no session uuid: %r" % r)
        return self.with_session(sid)

    # Helpers that assert.
    def create(self, path, params, status=200):
        r = self.post(path, params)
        expect(r, status)
        return r.inv

    def job(self, path, params, timeout=60.0):
        """POSTs an API job (202 + location) and polls the location until
        it is done; returns the final Resp."""
        r = self.post(path, params)
        expect(r, 202)
        loc = (r.body or {}).get("location")
        check(loc and "/api-jobs/" in loc, "202 without a job location: %r"
              % r)
        check(r.header("Location") in (None, loc),
              "Location header %r differs from body location %r"
              % (r.header("Location"), loc))
        return self.wait_job(loc, timeout)

    def ssh_job(self, path, params, timeout=60.0):
        """Like job() for add-kvm-host / add-sftp-backup-storage: when the
        server tried to reach the address over SSH and found nobody there
        (a version with SSH bootstrap and no test host), raises EnvSkip."""
        j = self.job(path, params, timeout)
        if j.status >= 500 and j.error.get("problem") in (
                "host-unreachable", "timeout"):
            addr = params.get("managementIp") or params.get("hostname")
            raise EnvSkip(
                "no SSH server at %s:%s for %s (%s); this version of "
                "kvmstack bootstraps hosts over SSH: give a test host in "
                "KVMSTACK_TEST_HOST_IP and KVMSTACK_TEST_HOST_PASSWORD"
                % (addr, params.get("sshPort", 22), path,
                   j.error.get("details")))
        return j

    def delete_job(self, path, timeout=60.0):
        """DELETE that is an API job (202 + location): waits for it and
        returns the final Resp."""
        r = self.delete(path)
        expect(r, 202)
        loc = (r.body or {}).get("location")
        check(loc and "/api-jobs/" in loc, "202 without a job location: %r"
              % r)
        return self.wait_job(loc, timeout)

    def wait_job(self, loc, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            j = self.get(loc)
            if j.status != 202:
                return j
            check(time.monotonic() < deadline,
                  "job %s still running after %.0f s: %r" % (loc, timeout,
                                                               j))
            time.sleep(0.05)

    def find(self, path, name):
        """The inventory named 'name' in collection 'path', or None."""
        r = self.get(path + "?q=" + urllib.parse.quote("name=" + name))
        expect(r, 200)
        return r.invs[0] if r.invs else None


def expect(resp, status, field=None, mention=()):
    """Asserts the status; for errors also the ZStack error shape, that
    'field' is error.field or appears in error.details, and that every
    string of 'mention' appears in error.details."""
    statuses = status if isinstance(status, (tuple, list)) else (status,)
    check(resp.status in statuses, "expected HTTP %s, got %r"
          % ("/".join(map(str, statuses)), resp))
    if resp.status >= 400:
        err = resp.error
        check(err and all(isinstance(err.get(k), str) and err.get(k)
                          for k in ("code", "description", "details")),
              "error reply lacks error.code/description/details: %r" % resp)
        details = err.get("details", "")
        if field is not None:
            check(err.get("field") == field or field in details,
                  "error names neither field %r in error.field nor in "
                  "error.details: %r" % (field, resp))
        for m in mention:
            check(m in details, "error.details does not mention %r: %r"
                  % (m, resp))
    return resp


# ---------------------------------------------------------------- sqlite

# Columns the server refreshes on its own, whatever the API is asked: the
# backup-storage monitor logs in every ping interval and records the
# folder's free space and its status.
MONITORED = {"backupStorage": ("status", "totalCapacity", "availableCapacity",
                               "lastError")}


def db_dump(path, ignore=("session", "apiJob"), blank=None):
    """Every table's rows (sorted) of the SQLite file at 'path', read
    through a read-only connection.  'blank' maps a table to the columns
    whose values are left out (replaced by '*'): state that is refreshed
    on its own, e.g. a host's connection status (MONITORED always)."""
    blank = dict(blank or {})
    for t, cols in MONITORED.items():
        blank[t] = tuple(blank.get(t, ())) + cols
    con = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path),
                          uri=True, timeout=30)
    try:
        con.execute("PRAGMA query_only=1")
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "ORDER BY name")]
        out = {}
        for t in tables:
            if t in ignore:
                continue
            cur = con.execute('SELECT * FROM "%s"' % t.replace('"', '""'))
            cols = [d[0] for d in cur.description]
            drop = {i for i, c in enumerate(cols) if c in blank.get(t, ())}
            rows = [tuple("*" if i in drop else v for i, v in enumerate(r))
                    for r in cur.fetchall()]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def db_query(path, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path),
                          uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def dump_diff(before, after, limit=6):
    """A short description of what differs between two db_dump()s, or ''."""
    lines = []
    for t in sorted(set(before) | set(after)):
        b = set(before.get(t, []))
        a = set(after.get(t, []))
        if a == b:
            continue
        for row in sorted(a - b, key=repr)[:limit]:
            lines.append("  %s: added   %r" % (t, row))
        for row in sorted(b - a, key=repr)[:limit]:
            lines.append("  %s: removed %r" % (t, row))
    return "\n".join(lines)


# ------------------------------------------------------------------- TAP

class Tap:
    """TAP producer with the --only filter: a result whose name does not
    match is neither printed nor counted."""

    def __init__(self, only=None, out=sys.stdout):
        self.only = only
        self.out = out
        self.n = 0
        self.failed = 0
        self.lock = threading.Lock()

    def selected(self, name, case=None):
        if not self.only:
            return True
        return (fnmatch.fnmatchcase(name, self.only)
                or (case is not None
                    and fnmatch.fnmatchcase(case, self.only)))

    def diag(self, text):
        with self.lock:
            for line in str(text).splitlines():
                self.out.write("# %s\n" % line)
            self.out.flush()

    def result(self, ok, name, diag=None, case=None, skip=None):
        if not self.selected(name, case):
            return
        name = " ".join(name.replace("#", "(hash)").split())
        with self.lock:
            self.n += 1
            if not ok:
                self.failed += 1
            line = "%s %d - %s" % ("ok" if ok else "not ok", self.n, name)
            if skip:
                line += " # SKIP %s" % " ".join(str(skip).split())
            self.out.write(line + "\n")
            if diag:
                for d in str(diag).splitlines():
                    self.out.write("#   %s\n" % d)
            self.out.flush()

    def plan(self):
        self.out.write("1..%d\n" % self.n)
        self.out.flush()


class StepAbort(Exception):
    """A step failed (already reported); the rest of the case is skipped."""


class Case:
    """The context a test case gets: its TAP name prefix, the environment
    (servers, shared fixtures), step() for a sequence that stops at the
    first failure and item() for table rows that go on after one."""

    def __init__(self, name, env, tap):
        self.name = name
        self.env = env
        self.tap = tap
        self.failures = 0
        self.skip_reason = None     # Set when a step was skipped.

    def _report(self, ok, item, err=None):
        full = "%s: %s" % (self.name, item)
        diag = None
        if not ok:
            self.failures += 1
            if isinstance(err, Fail):
                diag = str(err)
            else:
                diag = "".join(traceback.format_exception(
                    type(err), err, err.__traceback__)).rstrip()
            tail = self.env.failure_log_tails()
            if tail:
                diag += "\n" + tail
        self.tap.result(ok, full, diag, case=self.name)

    @contextlib.contextmanager
    def step(self, item, go_on=False):
        """A step of a sequence: a failure (or EnvSkip) is reported and
        ends the case (StepAbort), unless 'go_on' (later steps do not need
        this one), in which case the case continues."""
        try:
            yield
        except StepAbort:
            raise
        except KeyboardInterrupt:
            raise
        except EnvSkip as e:
            self.skip(item, str(e))
            if not go_on:
                self.skip_reason = str(e)
                raise StepAbort() from e
            return
        except BaseException as e:  # noqa: B902 - report any failure
            self._report(False, item, e)
            if go_on:
                return
            raise StepAbort() from e
        self._report(True, item)

    def item(self, item, fn, *args):
        """Runs one table row; reports it; never raises (but for ^C)."""
        try:
            fn(*args)
        except KeyboardInterrupt:
            raise
        except EnvSkip as e:
            self.skip(item, str(e))
            return None
        except BaseException as e:  # noqa: B902
            self._report(False, item, e)
            return False
        self._report(True, item)
        return True

    def skip(self, item, reason):
        self.tap.result(True, "%s: %s" % (self.name, item), case=self.name,
                        skip=reason)


# -------------------------------------------------------------- registry

CASES = []


def case(name, order):
    """Registers a test case function f(ctx: Case)."""
    def deco(fn):
        CASES.append((order, name, fn))
        return fn
    return deco


class Env:
    """The servers and fixtures the cases share.  The main server starts
    on first use; cases store the uuids they create in .shared."""

    def __init__(self):
        self._main = None
        self.shared = {}
        self.active = []        # Servers whose log tail a failure shows.

    def main(self):
        if self._main is None:
            self._main = Server("api-main", args=SERVER_ARGS).start()
        if self._main not in self.active:
            self.active.insert(0, self._main)
        return self._main

    def admin(self):
        """A fresh admin client of the main server."""
        return self.main().login()

    def failure_log_tails(self, lines=15):
        out = []
        for s in self.active:
            out.append("--- tail of %s (%s):" % (s.log.relative_to(REPO),
                                                 s.name))
            out.append(s.log_tail(lines))
        return "\n".join(out)

    def close(self):
        Server.kill_all()


def wait_for(what, fn, timeout=60.0, interval=0.1):
    """Calls fn() until it returns something true (returned) or 'timeout'
    seconds pass (AssertionError naming 'what' and fn's last answer); an
    AssertionError from fn counts as a false answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except AssertionError as e:
            last = str(e)
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)"
                         % (timeout, what, last))

# -- a tier's main (tests/api/main.py, tests/system/main.py) -----------

def _terminate(signum, frame):
    # Once: further signals must not interrupt the cleanup that follows.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt("signal %d" % signum)


def case_selected(name, only):
    if not only:
        return True
    head = only.split(":", 1)[0].strip()
    return fnmatch.fnmatchcase(name, only) or fnmatch.fnmatchcase(name, head)


def main(test_dir, description=None):
    """The main of a tier whose cases are the @case functions of
    'test_dir'/test_*.py (the api and system tiers): --list, --only GLOB,
    TAP out, every server and bed closed on the way out, also on a signal.
    Returns the exit status."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--only")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()

    sys.path.insert(0, str(test_dir))
    for f in sorted(Path(test_dir).glob("test_*.py")):
        importlib.import_module(f.stem)
    cases = sorted(CASES, key=lambda c: (c[0], c[1]))
    if args.list:
        for _, name, _ in cases:
            print(name)
        return 0

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    tap = Tap(only=args.only)
    env = Env()
    try:
        for _, name, fn in cases:
            if not case_selected(name, args.only):
                continue
            ctx = Case(name, env, tap)
            try:
                fn(ctx)
            except StepAbort:
                if ctx.skip_reason:
                    tap.result(True, "%s: the steps after it" % name,
                               case=name, skip=ctx.skip_reason)
                else:
                    tap.diag("%s: stopped after the failed step above"
                             % name)
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: B902
                ctx._report(False, "runs to completion", e)
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        env.close()
        try:
            tap.out.write("Bail out! interrupted (%s)\n" % (e or "^C"))
            tap.out.flush()
        except OSError:
            pass
        return 130
    except BaseException:
        env.close()
        tap.out.write("Bail out! harness error\n")
        tap.diag(traceback.format_exc())
        return 2
    finally:
        env.close()
    tap.plan()
    return 1 if tap.failed else 0


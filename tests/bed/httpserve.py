#!/usr/bin/env python3
"""A minimal static HTTP server inside a test-bed host, so that system tests
can hand AddImage an http:// URL (e.g. for build/images/test-guest.qcow2)
without anything leaving the machine.

    from httpserve import serve, stop      # sys.path += ['tests/bed']
    base = serve(host, '/work/main/build/images')   # 'http://10.250.N.2:18080'
    url = base + '/test-guest.qcow2'
    ...
    stop(host)                              # or stop(host, base); optional:
                                            # the host's teardown kills it too

The server is `python3 -m http.server --bind <host.ip> PORT --directory DIR`
started in the background inside the host (its netns, mount and PID
namespaces; the file system is shared, so DIR is the same path as in the
test).  It listens on the host's bed address, which is reachable from inside
that host (e.g. its backup-storage agent) and from the root namespace (the
test itself), not from other bed hosts: serve on the host that downloads.
Its log is <host.dir>/httpserve-PORT.log.  Python 3 stdlib only.
"""

import os
import shlex
import socket
import time

__all__ = ['serve', 'stop', 'HttpServer']

DEFAULT_PORT = 18080
_servers = {}           # (host name, port) -> (host, namespace-local pid)


def _listening(ip, port, timeout=0.2):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def serve(host, directory, port=None, bind=None, timeout=10):
    """Serve `directory` over HTTP inside `host`; returns the URL base
    'http://IP:PORT' (no trailing slash).  port=None picks the first free
    port from 18080 on; bind defaults to host.ip."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError('httpserve: no directory %s' % directory)
    ip = bind or host.ip
    if port is None:
        used = {p for (h, p) in _servers if h == host.name}
        port = DEFAULT_PORT
        while port in used or _listening(ip, port):
            port += 1
    elif _listening(ip, port):
        raise RuntimeError('httpserve: %s:%d is already in use' % (ip, port))
    log = os.path.join(host.dir, 'httpserve-%d.log' % port)
    cmd = ('cd / && exec python3 -m http.server --bind %s %d --directory %s '
           '>%s 2>&1 </dev/null' % (shlex.quote(ip), port, shlex.quote(directory),
                                    shlex.quote(log)))
    r = host.run('( %s ) & echo $!' % cmd)
    pid = int(r.stdout.strip().splitlines()[-1])
    _servers[(host.name, port)] = (host, pid)
    end = time.monotonic() + timeout
    while not _listening(ip, port):
        alive = host.run('kill -0 %d 2>/dev/null' % pid, check=False).returncode == 0
        if not alive or time.monotonic() > end:
            _servers.pop((host.name, port), None)
            if alive:
                host.run('kill %d 2>/dev/null' % pid, check=False)
            try:
                with open(log) as f:
                    tail = f.read()[-1000:]
            except OSError:
                tail = ''
            raise RuntimeError('httpserve: server on %s:%d did not start: %s'
                               % (ip, port, tail.strip()))
        time.sleep(0.05)
    return 'http://%s:%d' % (ip, port)


def stop(host, url_base=None, timeout=5):
    """Stop the server(s) serve() started in `host` (only the one behind
    url_base when given).  Safe to call twice or after the host is gone."""
    for (name, port), (h, pid) in list(_servers.items()):
        if name != host.name or (url_base and not url_base.rstrip('/').endswith(':%d' % port)):
            continue
        _servers.pop((name, port), None)
        try:
            h.run('kill %d 2>/dev/null; i=0; while kill -0 %d 2>/dev/null && [ $i -lt %d ]; '
                  'do sleep 0.05; i=$((i+1)); done; kill -9 %d 2>/dev/null; true'
                  % (pid, pid, int(timeout * 20), pid), check=False)
        except Exception:       # host already torn down: nothing left to stop
            pass


class HttpServer:
    """Context manager form: `with HttpServer(host, dir) as base: ...`."""

    def __init__(self, host, directory, port=None, bind=None):
        self.host, self.directory, self.port, self.bind = host, directory, port, bind
        self.url_base = None

    def __enter__(self):
        self.url_base = serve(self.host, self.directory, self.port, self.bind)
        return self.url_base

    def __exit__(self, *exc):
        stop(self.host, self.url_base)
        return False

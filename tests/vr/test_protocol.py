#!/usr/bin/env python3
"""test_protocol.py: kvmstack-vr's side of the protocol (proto.h, "Virtual
routers") and its input validation, in a router namespace (vrlib.py).
Root.  TAP.

init first; ping/pong; unknown method; a call without a method; a line
that is not JSON; invalid configurations refused before any side effect
(an address nft would try to resolve, an unknown MAC, two rules on one
port, ranges of different length); the agent's {"uuid","config"}
envelope; vr.status; a configuration of 40,000 rules (6.9 MB: more than
the 4 MiB frames of old; proto.h now allows 64 MiB, kvmstack-vr 256); the
--port transport (a pty standing in for the virtio-serial port); SIGTERM.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
import tty

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vrlib import (BACKEND1, base_config, ok, rule, run_in_topology,  # noqa: E402
                   sh, vr_binary)



def no_table(t):
    return 'kvmstack_vr' not in t.nft('list', 'tables')


def refused(t, vr, cfg, problem, desc, field=None):
    reply, _ = vr.apply(cfg)
    ok(reply.get('problem') == problem
       and (field is None or reply.get('field') == field)
       and no_table(t), desc + ' (%s: %s)' % (reply.get('problem'),
                                             reply.get('message')), reply)


def main():
    return run_in_topology('kvrp', run, dhcp_leg=False)


def run(t):
    t.create()
    vr = t.start_vr()
    init = vr.init
    ok(init.get('kind') == 'init' and init.get('version') == 1
       and init.get('role') == 'vr', 'the first frame is init, role vr',
       init)
    vr.send({'kind': 'ping', 'id': 77})
    f = vr.read_frame(10)
    ok(f == {'kind': 'pong', 'id': 77}, 'ping -> pong with the same id', f)
    reply, _ = vr.call('vr.nonsense', {})
    ok(reply.get('problem') == 'not-supported',
       'an unknown method is not-supported', reply)
    vr.send({'kind': 'call', 'id': 5})
    f = vr.read_frame(10)
    ok(f.get('id') == 5 and f.get('problem') == 'protocol-error',
       'a call without a method is a protocol-error', f)
    vr.proc.stdin.write(b'this is not json\n')
    vr.send({'kind': 'ping', 'id': 78})
    f = vr.read_frame(10)
    ok(f == {'kind': 'pong', 'id': 78},
       'a line that is not JSON is dropped; the channel goes on', f)

    good = rule('r1', '198.51.100.10', 'tcp', [22, 22], BACKEND1, [22, 22])
    refused(t, vr, base_config(1, [dict(good, vip='10.0.0.300')]),
            'invalid-argument', 'VIP 10.0.0.300 is refused before nft sees '
            'it', 'portForwarding[0].vip')
    refused(t, vr, base_config(1, [dict(good, guestIp='backend.example')]),
            'invalid-argument', 'a host name is never handed to nft (which '
            'would resolve it)', 'portForwarding[0].guestIp')
    cfg = base_config(1, [good])
    cfg['interfaces'][1]['mac'] = '52:54:00:99:99:99'
    refused(t, vr, cfg, 'not-found', 'an unknown MAC: not-found, nothing '
            'done')
    refused(t, vr, base_config(1, [
        rule('a', '198.51.100.10', 'tcp', [1000, 1010], BACKEND1,
             [2000, 2010]),
        rule('b', '198.51.100.10', 'tcp', [1005, 1005], BACKEND1,
             [22, 22])]), 'conflict', 'two rules on one VIP port: conflict')
    refused(t, vr, base_config(1, [dict(good, vipPorts=[1000, 1010],
                                        guestPorts=[2000, 2001])]),
            'invalid-argument', 'VIP and guest ranges of different length',
            'portForwarding[0].guestPorts')
    refused(t, vr, base_config(1, [dict(good, allowedCidr='10.0.0.0/33')]),
            'invalid-argument', 'allowedCidr /33',
            'portForwarding[0].allowedCidr')

    cfg = base_config(1, [good], dhcp={'subnet': '10.0.0.0/24',
                                       'gateway': '10.0.0.1', 'hosts': []})
    cfg['interfaces'] = cfg['interfaces'][:1]
    refused(t, vr, cfg, 'invalid-argument', 'DHCP without a private '
            'interface', 'dhcp')

    full = base_config(1, [good, rule('r2', '198.51.100.11', 'udp',
                                      [1000, 1010], BACKEND1, [2000, 2010],
                                      '198.51.100.0/24')])
    p = subprocess.run([vr_binary(), '--render-nft', '-'],
                       input=json.dumps(full), capture_output=True,
                       text=True)
    chk = sh('nft', '-c', '-f', '-', ns=t.router, input=p.stdout,
             check=False)
    ok(p.returncode == 0 and 'table ip kvmstack_vr {' in p.stdout
       and chk.returncode == 0 and no_table(t),
       '--render-nft prints the full batch, and `nft -c` (this nft, this '
       'kernel) accepts it', p.stdout + p.stderr + chk.stderr)

    reply, _ = vr.call('vr.apply', {'uuid': 'f' * 32,
                                    'config': base_config(3, [good])})
    ok(reply.get('result', {}).get('gen') == 3,
       'the agent\'s envelope {"uuid","config"} is accepted', reply)
    reply, _ = vr.call('vr.status', {})
    ok(reply.get('result') == {'gen': 3}, 'vr.status gives the gen', reply)

    rules = [rule('%032x' % i, '198.51.%d.%d' % (100 + i // 60000,
                                                 10 + (i // 60000)),
                  'tcp', [1 + i % 60000] * 2, '10.0.%d.%d' % (
                      (i // 250) % 250, 2 + i % 250), [22, 22])
             for i in range(40000)]
    big = base_config(4, rules)
    size = len(json.dumps(big, separators=(',', ':')))
    reply, secs = vr.apply(big, timeout=300)
    st = reply.get('result', {}).get('stats', {})
    ok(reply.get('result', {}).get('gen') == 4
       and st.get('nftOps', 0) >= 40000,
       'a %.1f MB configuration (40,000 rules) is applied in one '
       'transaction (%.2f s)' % (size / 1e6, secs),
       reply)
    big['gen'] = 5
    big['portForwarding'] = rules[1:]
    reply, secs = vr.apply(big, timeout=300)
    st = reply.get('result', {}).get('stats', {})
    ok(st.get('nftOps') == 1 and not st.get('nftFull'),
       'then one rule less is one element deleted (nft %.2f ms, apply %.1f '
       'ms, JSON parse %.1f ms, call %.0f ms)'
       % (st.get('nftUsec', 0) / 1000, st.get('applyUsec', 0) / 1000,
          st.get('parseUsec', 0) / 1000, secs * 1000), reply)

    vr.proc.send_signal(signal.SIGTERM)
    try:
        rc = vr.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc == 0, 'SIGTERM: kvmstack-vr exits 0', rc)
    port_mode(t)


def port_mode(t):
    """--port on a pty: the daemon opens it, prints VR-READY, says init,
    and serves calls."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    out = open(os.path.join(t.tmp, 'port.out'), 'w+')
    p = t.spawn(t.router, [vr_binary(), '--port', path, '--run-dir',
                           t.run_dir], stdout=out,
                stderr=open(os.path.join(t.tmp, 'port.log'), 'w'))
    buf = b''

    def frame(timeout=10):
        nonlocal buf
        deadline = time.monotonic() + timeout
        while b'\n' not in buf and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                buf += os.read(master, 65536)
        if b'\n' not in buf:
            return None
        line, buf = buf.split(b'\n', 1)
        return json.loads(line)

    try:
        init = frame()
        out.seek(0)
        ready = out.read()
        ok(init and init.get('kind') == 'init' and init.get('role') == 'vr'
           and 'VR-READY' in ready,
           '--port: prints VR-READY on stdout and says init on the port',
           [init, ready])
        os.write(master, b'{"kind":"ping","id":9}\n')
        f = frame()
        data = json.dumps({'kind': 'call', 'id': 10, 'method': 'vr.apply',
                           'params': base_config(6, [])}).encode() + b'\n'
        os.write(master, data)
        g = frame(30)
        ok(f == {'kind': 'pong', 'id': 9}
           and g and g.get('result', {}).get('gen') == 6,
           '--port: ping/pong and vr.apply through the port', [f, g])
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        os.close(master)
        os.close(slave)


if __name__ == '__main__':
    sys.exit(main())

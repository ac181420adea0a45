#!/usr/bin/env python3
"""test_ctindex.py: kvmstack-vr's conntrack index (hostagent/vr/ct.c)
against kvmstack-vr --stdio in network namespaces (vrlib.py).  Root.  TAP.

A rule that is re-targeted or removed must stop carrying its flows, and
the flush must come from the index kept by conntrack events (the reply's
"conntrackDump" false), not from a dump of the kernel's conntrack table:
a live UDP flow and an established TCP connection, re-targeted, no longer
reach the old backend and new ones reach the new one; a removed rule's
flow is flushed too.  Flows that existed before kvmstack-vr started are
flushed through the index (seeded by the startup dump).  The fallback: a
stopped daemon with a tiny event buffer (KVMSTACK_VR_CT_RCVBUF) loses the
events of a burst of flows; the next flush dumps ("conntrackDump" true)
and still flushes them all, and re-seeds the index, so the flush after it
finds by index the flows whose events were lost.  An index over its bound
(KVMSTACK_VR_CT_MAX) is dropped and the flush dumps.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vrlib import (BACKEND1, BACKEND2, CLIENT1, NETUTIL, base_config,  # noqa: E402
                   delta, ok, rule, run_in_topology, stats)

VIP1 = '198.51.100.10'

R_UDP = rule('c-udp', VIP1, 'udp', [5300, 5300], BACKEND1, [5353, 5353])
R_UDP2 = rule('c-udp2', VIP1, 'udp', [5301, 5301], BACKEND1, [5353, 5353])
R_TCP = rule('c-tcp', VIP1, 'tcp', [7000, 7000], BACKEND1, [7000, 7000])
RULES = [R_UDP, R_UDP2, R_TCP]


def to(r, gip):
    return dict(r, guestIp=gip)


class Hold:
    """An established TCP connection from the public side (netutil.py
    tcp-hold), asked for an answer line by line."""

    def __init__(self, t, addr, port, src):
        self.p = subprocess.Popen(
            ['ip', 'netns', 'exec', t.pub, sys.executable, NETUTIL,
             'tcp-hold', addr, str(port), src],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            bufsize=1)
        t.procs.append(self.p)

    def ask(self):
        try:
            self.p.stdin.write('x\n')
            self.p.stdin.flush()
        except OSError as e:
            return 'ERR %s' % e
        line = self.p.stdout.readline()
        return line.strip() or 'ERR eof'

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(10)


def log_text(t):
    with open(t.vr.log_path) as f:
        return f.read()


def main():
    return run_in_topology('kvrc', run, dhcp_leg=False)


def run(t):
    t.create()
    for addr, name in ((BACKEND1, 'b1'), (BACKEND2, 'b2')):
        t.server(t.priv, 'udp', addr, [5353], name)
        t.server(t.priv, 'hold', addr, [7000], name)
    vr = t.start_vr()
    reply, _ = vr.apply(base_config(1, RULES, vips=(VIP1,)))
    ok(reply.get('result', {}).get('gen') == 1, 'a whole configuration',
       reply)

    # -- re-target through the index -------------------------------------
    first = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40100)
    hold = Hold(t, VIP1, 7000, CLIENT1)
    before = hold.ask()
    reply, _ = vr.apply(delta(2, 1, [to(R_UDP, BACKEND2),
                                     to(R_TCP, BACKEND2)]))
    st = stats(reply)
    again = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40100)
    after = hold.ask()
    hold.close()
    hold2 = Hold(t, VIP1, 7000, CLIENT1)
    fresh = hold2.ask()
    hold2.close()
    ok(first == 'b1 5353 %s' % CLIENT1 and before == 'b1 7000 %s' % CLIENT1
       and st.get('conntrackDump') is False
       and st.get('conntrackFlushed') == 2
       and again == 'b2 5353 %s' % CLIENT1
       and not after.startswith('b1 ')
       and fresh == 'b2 7000 %s' % CLIENT1,
       're-target: the live UDP flow and the established TCP connection '
       'are flushed through the index (conntrackDump false, %s flushed in '
       '%s us): the UDP flow reaches %s, the TCP connection no longer '
       'reaches %s (%s), a new one reaches %s'
       % (st.get('conntrackFlushed'), st.get('conntrackUsec'), BACKEND2,
          BACKEND1, after, BACKEND2),
       [first, before, reply, again, after, fresh])

    reply, _ = vr.apply(delta(3, 2, dels=['c-udp']))
    st = stats(reply)
    gone = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40100)
    ok(st.get('conntrackDump') is False and st.get('conntrackFlushed') == 1
       and not gone.startswith('b'),
       'detach (delta del): the rule\'s live UDP flow is flushed through '
       'the index (%s flushed) and reaches nobody (%s)'
       % (st.get('conntrackFlushed'), gone), [reply, gone])

    reply, _ = vr.apply(delta(4, 3, [R_UDP]))
    st = stats(reply)
    ok(st.get('conntrackDump') is False and st.get('conntrackFlushed') == 0
       and st.get('nftOps') == 1,
       'a rule added back: a port without flows costs no dump and no '
       'delete', reply)

    # -- flows from before the daemon started: seeded --------------------
    pre = t.netutil(t.pub, 'udp', VIP1, 5301, CLIENT1, 40200)
    vr.stop()
    vr = t.start_vr()
    seeded = [line for line in log_text(t).splitlines()
              if 'index seeded' in line]
    reply, _ = vr.apply(base_config(1, RULES, vips=(VIP1,)))
    st1 = stats(reply)
    reply, _ = vr.apply(delta(2, 1, [to(R_UDP2, BACKEND2)]))
    st = stats(reply)
    moved = t.netutil(t.pub, 'udp', VIP1, 5301, CLIENT1, 40200)
    ok(pre == 'b1 5353 %s' % CLIENT1 and seeded
       and st1.get('conntrackDump') is False
       and st.get('conntrackDump') is False
       and st.get('conntrackFlushed') == 1
       and moved == 'b2 5353 %s' % CLIENT1,
       'a UDP flow from before a restart is in the index seeded at start '
       '(%s): re-targeted, it is flushed without a dump and reaches %s'
       % (seeded[-1].split('conntrack: ')[-1] if seeded else 'no log line',
          BACKEND2), [pre, seeded, st1, reply, moved])
    vr.stop()

    # -- lost events: the flush dumps, then the index is reliable again --
    vr = t.start_vr({'KVMSTACK_VR_CT_RCVBUF': '65536'})
    reply, _ = vr.apply(base_config(1, RULES, vips=(VIP1,)))
    ok(stats(reply).get('gen', 1) and reply.get('result', {}).get('gen')
       == 1, 'restarted with a 64 KiB event buffer', reply)
    os.kill(vr.proc.pid, signal.SIGSTOP)
    try:
        b1 = t.netutil(t.pub, 'udp-burst', VIP1, 5300, CLIENT1, 41000, 200)
        b2 = t.netutil(t.pub, 'udp-burst', VIP1, 5301, CLIENT1, 42000, 200)
        time.sleep(0.3)
    finally:
        os.kill(vr.proc.pid, signal.SIGCONT)
    reply, _ = vr.call('vr.status', {})
    lost = 'conntrack: events lost' in log_text(t)
    reply, _ = vr.apply(delta(2, 1, [to(R_UDP, BACKEND2)]))
    st = stats(reply)
    moved = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 41007)
    ok(b1 == 'sent 200' and b2 == 'sent 200' and lost
       and st.get('conntrackDump') is True
       and st.get('conntrackFlushed', 0) >= 200
       and moved == 'b2 5353 %s' % CLIENT1,
       'events lost while the daemon was stopped (logged: %s): the flush '
       'dumps (conntrackDump true) and flushes all %s flows of the '
       're-targeted port; one of them reaches %s'
       % (lost, st.get('conntrackFlushed'), BACKEND2),
       [b1, b2, reply, moved, log_text(t)[-2000:]])
    reply, _ = vr.apply(delta(3, 2, [to(R_UDP2, BACKEND2)]))
    st = stats(reply)
    moved = t.netutil(t.pub, 'udp', VIP1, 5301, CLIENT1, 42011)
    ok(st.get('conntrackDump') is False
       and st.get('conntrackFlushed', 0) >= 200
       and moved == 'b2 5353 %s' % CLIENT1,
       'the dump re-seeded the index: the next flush finds the %s flows '
       'whose events were lost without a dump; one of them reaches %s'
       % (st.get('conntrackFlushed'), BACKEND2), [reply, moved])
    vr.stop()

    # -- the bound: the index is dropped, flushes dump --------------------
    vr = t.start_vr({'KVMSTACK_VR_CT_MAX': '8'})
    reply, _ = vr.apply(base_config(1, RULES, vips=(VIP1,)))
    burst = t.netutil(t.pub, 'udp-burst', VIP1, 5300, CLIENT1, 43000, 20)
    time.sleep(0.2)
    reply, _ = vr.apply(delta(2, 1, [to(R_UDP, BACKEND2)]))
    st = stats(reply)
    moved = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 43003)
    dropped = 'more than 8 DNATed entries' in log_text(t)
    ok(burst == 'sent 20' and dropped and st.get('conntrackDump') is True
       and st.get('conntrackFlushed', 0) >= 20
       and moved == 'b2 5353 %s' % CLIENT1,
       'more flows than KVMSTACK_VR_CT_MAX=8: the index is dropped (logged: '
       '%s), the flush dumps and flushes all %s flows'
       % (dropped, st.get('conntrackFlushed')),
       [burst, reply, moved, log_text(t)[-2000:]])


if __name__ == '__main__':
    sys.exit(main())

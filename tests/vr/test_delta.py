#!/usr/bin/env python3
"""test_delta.py: the delta form of vr.apply (proto.h, "Virtual routers":
vr.apply {"delta":D}) against kvmstack-vr --stdio in network namespaces
(vrlib.py).  Root.  TAP.

A delta before any full apply is refused (gen gap: have none); after a
full apply: add, re-target (the same UDP flow moves at once: conntrack
flushed), remove, each one nft transaction of only that rule's elements
with traffic checks; the same rule again is nothing; a delete of an
unknown uuid is nothing; a VIP /32 comes with its first rule and goes with
its last; refusals change nothing (the ruleset, vr.status, and the
in-memory configuration: the equivalent whole configuration is then an
empty batch): a gen gap, a port held by a staying rule, a rule without a
uuid; the agent's envelope {"uuid","delta"}; a delta after a new full
apply, and one based on the gen before it refused; an element deleted
behind the daemon's back makes the refused delta a full rebuild; a
30,000-rule configuration: one rule added and deleted by deltas; 400
random deltas among 20,000 rules, after which the whole configuration is an empty batch.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vrlib import (BACKEND1, BACKEND2, CLIENT1, base_config, delta, ok,  # noqa: E402
                   rule, run_in_topology, sh, stats)

VIP1 = '198.51.100.10'
VIP2 = '198.51.100.11'

R_SSH = rule('r-ssh', VIP1, 'tcp', [22, 22], BACKEND1, [22, 22])
R_UDP = rule('r-udp', VIP1, 'udp', [5300, 5300], BACKEND1, [5353, 5353])
R_NEW = rule('r-new', VIP1, 'tcp', [8022, 8022], BACKEND1, [8022, 8022])
R_RANGE = rule('r-range', VIP1, 'tcp', [1000, 1010], BACKEND1,
               [2000, 2010], CLIENT1 + '/32')
R_V2 = rule('r-v2', VIP2, 'tcp', [2222, 2222], BACKEND2, [22, 22])


def gen_of(vr):
    reply, _ = vr.call('vr.status', {})
    return reply.get('result', {}).get('gen')


def vip_addrs(t):
    out = sh('ip', '-4', '-o', 'addr', 'show', 'dev', 'r-pub',
             ns=t.router).stdout
    return sorted(a for a in (VIP1, VIP2) if ' %s/32 ' % a in out)


def main():
    return run_in_topology('kvrd', run, dhcp_leg=False)


def run(t):
    t.create()
    for addr, ports, name in ((BACKEND1, [22, 8022] + list(range(2000, 2011)),
                               'b1'), (BACKEND2, [22], 'b2')):
        t.server(t.priv, 'tcp', addr, ports, name)
    t.server(t.priv, 'udp', BACKEND1, [5353], 'b1')
    t.server(t.priv, 'udp', BACKEND2, [5353], 'b2')
    vr = t.start_vr()

    reply, _ = vr.apply(delta(1, 0, [R_SSH]))
    ok(reply.get('problem') == 'conflict'
       and reply.get('field') == 'baseGen'
       and 'gen gap: have none, delta is based on 0'
       in reply.get('message', '')
       and 'kvmstack_vr' not in t.nft('list', 'tables'),
       'a delta before any whole configuration: conflict "gen gap: have '
       'none", nothing done', reply)

    reply, _ = vr.apply(base_config(1, [R_SSH, R_UDP, R_RANGE],
                                    vips=(VIP1,)))
    ok(reply.get('result', {}).get('gen') == 1
       and stats(reply).get('delta') is False,
       'a whole configuration (gen 1) as the base', reply)

    # -- add ---------------------------------------------------------------
    reply, secs = vr.apply(delta(2, 1, [R_NEW]))
    st = stats(reply)
    got = t.netutil(t.pub, 'tcp', VIP1, 8022, CLIENT1)
    ok(reply.get('result', {}).get('gen') == 2 and st.get('delta') is True
       and st.get('nftOps') == 1 and not st.get('nftFull')
       and st.get('rules') == 4 and got == 'b1 8022 %s' % CLIENT1
       and gen_of(vr) == 2,
       'delta add (gen 2 on 1): one element, VIP:8022 forwarded (%s; %d '
       'batch bytes, %.1f ms)' % (got, st.get('batchBytes', 0),
                                  secs * 1000), reply)
    ok(0 < st.get('batchBytes', 0) < 200,
       'the batch holds only that element (%d bytes)'
       % st.get('batchBytes', 0), reply)
    reply, _ = vr.apply(delta(3, 2, [R_NEW]))
    ok(reply.get('result', {}).get('gen') == 3
       and stats(reply).get('nftOps') == 0,
       'the same rule again: nothing to change, gen 3', reply)

    # -- re-target -----------------------------------------------------------
    first = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40010)
    reply, _ = vr.apply(delta(4, 3, [dict(R_SSH, guestIp=BACKEND2),
                                     dict(R_UDP, guestIp=BACKEND2)]))
    st = stats(reply)
    again = t.netutil(t.pub, 'udp', VIP1, 5300, CLIENT1, 40010)
    tcp = t.netutil(t.pub, 'tcp', VIP1, 22, CLIENT1)
    ok(first.startswith('b1 ') and again == 'b2 5353 %s' % CLIENT1
       and tcp == 'b2 22 %s' % CLIENT1 and st.get('nftOps') == 4
       and st.get('conntrackFlushed', 0) >= 1 and st.get('rules') == 4,
       're-target by an add of existing uuids: 4 element changes, '
       'conntrack flushed (%s); the same UDP flow and a new TCP connection '
       'land on %s' % (st.get('conntrackFlushed'), BACKEND2),
       [first, again, tcp, reply])

    # -- remove --------------------------------------------------------------
    reply, _ = vr.apply(delta(5, 4, dels=['r-new']))
    st = stats(reply)
    got = t.netutil(t.pub, 'tcp', VIP1, 8022, CLIENT1)
    pf_tcp = t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_tcp')
    ok(st.get('nftOps') == 1 and got.startswith('ERR')
       and '%s . 8022 :' % VIP1 not in pf_tcp and st.get('rules') == 3,
       'delta del: one element removed, VIP:8022 no longer forwarded',
       [reply, got, pf_tcp])
    reply, _ = vr.apply(delta(6, 5, dels=['no-such-rule']))
    ok(reply.get('result', {}).get('gen') == 6
       and stats(reply).get('nftOps') == 0,
       'a del of an unknown uuid: nothing to change, gen 6', reply)

    # -- refusals change nothing -------------------------------------------
    before = t.nft('list', 'ruleset')
    reply, _ = vr.apply(delta(7, 4, [R_NEW]))
    after = t.nft('list', 'ruleset')
    ok(reply.get('problem') == 'conflict'
       and 'gen gap: have 6, delta is based on 4'
       in reply.get('message', '') and before == after
       and gen_of(vr) == 6,
       'gen gap (based on 4, have 6): conflict, ruleset and gen unchanged',
       reply)
    reply, _ = vr.apply(delta(7, 6, [rule('r-clash', VIP1, 'tcp',
                                           [1005, 1005], BACKEND2,
                                           [22, 22])]))
    after = t.nft('list', 'ruleset')
    got = t.netutil(t.pub, 'tcp', VIP1, 1005, CLIENT1)
    ok(reply.get('problem') == 'conflict' and before == after
       and gen_of(vr) == 6 and got == 'b1 2005 %s' % CLIENT1,
       'a port a staying rule forwards: conflict (%s), nothing changed, the '
       'old rule still works' % reply.get('message'), [reply, got])
    reply, _ = vr.apply(delta(7, 6, [dict(R_NEW, uuid=None)]))
    ok(reply.get('problem') == 'invalid-argument'
       and reply.get('field') == 'portForwardingAdd[0].uuid'
       and t.nft('list', 'ruleset') == before and gen_of(vr) == 6,
       'a rule without a uuid: invalid-argument on '
       'portForwardingAdd[0].uuid, nothing changed', reply)
    reply, _ = vr.apply(delta(7, 6, [dict(R_NEW, vip='10.0.0.300')]))
    ok(reply.get('problem') == 'invalid-argument'
       and reply.get('field') == 'portForwardingAdd[0].vip'
       and t.nft('list', 'ruleset') == before,
       'an invalid address in a delta is refused before nft sees it',
       reply)
    same = base_config(7, [dict(R_SSH, guestIp=BACKEND2),
                           dict(R_UDP, guestIp=BACKEND2), R_RANGE],
                       vips=(VIP1,))
    reply, _ = vr.apply(same)
    st = stats(reply)
    ok(reply.get('result', {}).get('gen') == 7 and st.get('nftOps') == 0
       and not st.get('addressesChanged')
       and t.nft('list', 'ruleset') == before,
       'the in-memory configuration after deltas and refusals is what they '
       'made it: the equivalent whole configuration (gen 7) is an empty '
       'batch, no address change', reply)

    # -- VIP addresses -----------------------------------------------------
    reply, _ = vr.apply(delta(8, 7, [R_V2], vips_add=[VIP2]))
    st = stats(reply)
    got = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT1)
    ok(st.get('addressesChanged') is True and vip_addrs(t) == [VIP1, VIP2]
       and got == 'b2 22 %s' % CLIENT1,
       'a VIP\'s first rule with vipsAdd: the /32 is added and the rule '
       'works', [reply, vip_addrs(t), got])
    reply, _ = vr.apply(delta(9, 8, dels=['r-v2'], vips_del=[VIP2]))
    st = stats(reply)
    got = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT1)
    ok(st.get('addressesChanged') is True and vip_addrs(t) == [VIP1]
       and got.startswith('ERR'),
       'its last rule with vipsDel: rule and /32 gone', [reply,
                                                       vip_addrs(t), got])
    reply, _ = vr.apply(delta(10, 9, vips_del=[VIP2]))
    ok(reply.get('result', {}).get('gen') == 10
       and stats(reply).get('addressesChanged') is False,
       'vipsDel of an address not there: nothing to change', reply)

    # -- the agent's envelope ----------------------------------------------
    d = delta(11, 10, [R_NEW])
    d['uuid'] = 'f' * 32
    reply, _ = vr.apply(d)
    got = t.netutil(t.pub, 'tcp', VIP1, 8022, CLIENT1)
    ok(reply.get('result', {}).get('gen') == 11 and got.startswith('b1 '),
       'the agent\'s envelope {"uuid","delta"} is accepted', [reply, got])

    # -- a whole configuration resets the base -----------------------------
    reply, _ = vr.apply(base_config(20, [R_SSH, R_UDP], vips=(VIP1,)))
    st = stats(reply)
    ok(reply.get('result', {}).get('gen') == 20
       and st.get('nftOps', 0) >= 1,
       'a whole configuration (gen 20) after deltas: diffed against what '
       'the deltas committed (%d element changes)' % st.get('nftOps', 0),
       reply)
    reply, _ = vr.apply(delta(12, 11, [R_V2], vips_add=[VIP2]))
    ok(reply.get('problem') == 'conflict' and vip_addrs(t) == [VIP1],
       'a delta based on the gen before it: gen gap', reply)
    reply, _ = vr.apply(delta(21, 20, [R_V2], vips_add=[VIP2]))
    got = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT1)
    got22 = t.netutil(t.pub, 'tcp', VIP1, 22, CLIENT1)
    ok(reply.get('result', {}).get('gen') == 21
       and got == 'b2 22 %s' % CLIENT1 and got22 == 'b1 22 %s' % CLIENT1,
       'a delta on the new gen: applied, and the rules of the whole '
       'configuration still work', [reply, got, got22])

    # -- drift behind the daemon's back --------------------------------------
    t.nft('delete', 'element', 'ip', 'kvmstack_vr', 'pf_tcp',
          '{ %s . 22 }' % VIP1)
    reply, _ = vr.apply(delta(22, 21, dels=['r-ssh']))
    st = stats(reply)
    pf_tcp = t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_tcp')
    got = t.netutil(t.pub, 'tcp', VIP2, 2222, CLIENT1)
    ok(reply.get('result', {}).get('gen') == 22 and st.get('nftFull')
       and '%s . 2222 :' % VIP2 in pf_tcp and ' . 22 :' not in pf_tcp
       and got == 'b2 22 %s' % CLIENT1,
       'an element deleted behind the daemon\'s back: the delta the kernel '
       'refuses is retried as one full rebuild', [reply, pf_tcp, got])

    big(t, vr)
    churn(t, vr)


def churn(t, vr):
    """Random deltas (fixed seed): adds, re-targets (also of ranges and
    allowedCidr), removals, several at once; the committed state must stay
    what a whole configuration of the same rules makes."""
    import random
    rnd = random.Random(5)
    free = list(range(30000, 31000, 5))
    rules = {}

    def new_rule(uuid, port):
        width = rnd.choice([0, 0, 0, 2, 4])
        g0 = rnd.randint(1000, 2000)
        return rule(uuid, VIP1, rnd.choice(['tcp', 'udp']),
                    [port, port + width],
                    '10.0.%d.%d' % (rnd.randint(0, 3), rnd.randint(2, 250)),
                    [g0, g0 + width],
                    rnd.choice([None, None, '198.51.100.0/24',
                                CLIENT1 + '/32']))
    # Under 20,000 other rules, so that removals meet collision chains in
    # the daemon's hash of elements.
    for i in range(20000):
        r = rule('s%d' % i, VIP2, 'tcp', [40000 + i] * 2, BACKEND1, [22, 22])
        rules[r['uuid']] = r
    gen = 100
    reply, _ = vr.apply(base_config(gen, list(rules.values()),
                                    vips=(VIP1, VIP2)), timeout=300)
    good = 'result' in reply
    for i in range(400):
        add, dels = [], []
        for _ in range(rnd.randint(1, 3)):
            op = rnd.random()
            if op < 0.5 and free:
                port = free.pop(rnd.randrange(len(free)))
                r = new_rule('c%d' % port, port)
                rules[r['uuid']] = r
                add.append(r)
            elif op < 0.75 and rules:
                uuid = rnd.choice(list(rules))
                if any(a['uuid'] == uuid for a in add):
                    continue
                r = dict(new_rule(uuid, rules[uuid]['vipPorts'][0]),
                         vip=rules[uuid]['vip'])
                if r['vip'] == VIP2:
                    r['vipPorts'] = rules[uuid]['vipPorts']
                    r['guestPorts'] = [22, 22]
                rules[uuid] = r
                add.append(r)
            elif rules:
                uuid = rnd.choice(list(rules))
                if any(a['uuid'] == uuid for a in add):
                    continue
                r = rules.pop(uuid)
                if r['vip'] == VIP1:
                    free.append(r['vipPorts'][0])
                dels.append(uuid)
        gen += 1
        reply, _ = vr.apply(delta(gen, gen - 1, add, dels))
        if reply.get('result', {}).get('gen') != gen:
            good = False
            break
    st = stats(reply)
    reply, _ = vr.apply(base_config(gen + 1, list(rules.values()),
                                    vips=(VIP1, VIP2)), timeout=300)
    ports = sum(r['vipPorts'][1] - r['vipPorts'][0] + 1
                for r in rules.values())
    listed = (t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_tcp') +
              t.nft('list', 'map', 'ip', 'kvmstack_vr', 'pf_udp')) \
        .count(' : 10.0.')
    ok(good and stats(reply).get('nftOps') == 0 and listed == ports
       and st.get('rules') == len(rules),
       '400 random deltas (%d rules, %d ports left): the whole '
       'configuration of the same rules is then an empty batch, and the '
       'maps hold every port once' % (len(rules), ports),
       [reply, st, listed, ports])


def big(t, vr):
    """30,000 rules: a delta's cost does not grow with them."""
    n = 30000
    rules = [rule('%032x' % i, VIP1, 'tcp', [20000 + i] * 2,
                  '10.0.%d.%d' % ((i // 250) % 250, 10 + i % 240), [22, 22])
             for i in range(n)]
    reply, secs = vr.apply(base_config(30, rules, vips=(VIP1,)), timeout=300)
    ok(reply.get('result', {}).get('gen') == 30,
       'a whole configuration of %d rules (%.2f s)' % (n, secs), reply)
    extra = rule('e' * 32, VIP1, 'tcp', [20000 + n] * 2, BACKEND1, [22, 22])
    calls = []
    gen = 30
    good = True
    for _ in range(5):
        t0 = time.monotonic()
        reply, _ = vr.apply(delta(gen + 1, gen, [extra]))
        add = time.monotonic() - t0
        good &= stats(reply).get('nftOps') == 1
        t0 = time.monotonic()
        reply2, _ = vr.apply(delta(gen + 2, gen + 1, dels=[extra['uuid']]))
        dele = time.monotonic() - t0
        good &= stats(reply2).get('nftOps') == 1
        gen += 2
        calls.append((add * 1000, dele * 1000))
    med = sorted(calls)[len(calls) // 2]
    ok(good and stats(reply2).get('rules') == n,
       'with %d rules, a delta add and a delta del are one element each '
       '(calls: add %.1f ms, del %.1f ms, the median of 5)'
       % (n, med[0], med[1]), [reply, reply2])
    reply, _ = vr.apply(delta(gen + 1, gen, [extra]))
    gen += 1
    got = t.netutil(t.pub, 'tcp', VIP1, 20000 + n, CLIENT1)
    same = base_config(gen + 1, rules + [extra], vips=(VIP1,))
    reply, _ = vr.apply(same, timeout=300)
    ok(got == 'b1 22 %s' % CLIENT1
       and stats(reply).get('nftOps') == 0,
       'the rule added by a delta works, and the whole configuration with '
       'it is an empty batch', [got, json.dumps(stats(reply))])


if __name__ == '__main__':
    sys.exit(main())

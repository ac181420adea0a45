#!/usr/bin/env python3
"""netutil.py: tiny servers and clients for tests/vr, run inside network
namespaces with `ip netns exec`.  Python 3 standard library only.

    serve-tcp ADDR PORT[,PORT...] NAME READYFILE
        accepts on every port; answers "NAME PORT PEER-ADDRESS\\n", closes
    serve-udp ADDR PORT[,PORT...] NAME READYFILE
        answers every datagram with "NAME PORT PEER-ADDRESS"
    serve-hold ADDR PORT[,PORT...] NAME READYFILE
        TCP; keeps each connection open and answers every line received
        with "NAME PORT PEER-ADDRESS\\n"
    serve-dns ADDR ANSWER READYFILE
        a DNS server on ADDR:53/udp answering every A question with ANSWER
    tcp ADDR PORT [SRC-ADDR]     prints the server's line, or ERR <reason>
    udp ADDR PORT SRC-ADDR SRC-PORT
                                 one datagram from SRC-ADDR:SRC-PORT; prints
                                 the answer, or ERR <reason>
    dns SERVER NAME              prints the A records, or ERR <rcode>
    tcp-hold ADDR PORT SRC-ADDR  one TCP connection held open: for every
                                 line on stdin sends a line and prints the
                                 answer (or ERR <reason>; the connection is
                                 then gone), until EOF
    udp-burst ADDR PORT SRC-ADDR SRC-PORT COUNT
                                 one datagram from each of COUNT source
                                 ports from SRC-PORT on, without waiting
                                 for answers; prints "sent COUNT"

A server writes READYFILE once it listens.
"""

import errno
import os
import select
import socket
import struct
import sys


def ready(path):
    with open(path + '.tmp', 'w') as f:
        f.write('ready\n')
    os.rename(path + '.tmp', path)


def serve_tcp(addr, ports, name, readyfile):
    socks = {}
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, p))
        s.listen(512)
        socks[s.fileno()] = (s, p)
    ready(readyfile)
    while True:
        r, _, _ = select.select(list(socks), [], [])
        for fd in r:
            s, p = socks[fd]
            try:
                c, peer = s.accept()
            except OSError:
                continue
            try:
                c.sendall(('%s %d %s\n' % (name, p, peer[0])).encode())
            except OSError:
                pass
            c.close()


def serve_udp(addr, ports, name, readyfile):
    socks = {}
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, p))
        socks[s.fileno()] = (s, p)
    ready(readyfile)
    while True:
        r, _, _ = select.select(list(socks), [], [])
        for fd in r:
            s, p = socks[fd]
            data, peer = s.recvfrom(2048)
            s.sendto(('%s %d %s' % (name, p, peer[0])).encode(), peer)


def serve_hold(addr, ports, name, readyfile):
    socks = {}
    conns = {}
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, p))
        s.listen(64)
        socks[s.fileno()] = (s, p)
    ready(readyfile)
    while True:
        r, _, _ = select.select(list(socks) + list(conns), [], [])
        for fd in r:
            if fd in socks:
                s, p = socks[fd]
                try:
                    c, peer = s.accept()
                except OSError:
                    continue
                conns[c.fileno()] = (c, p, peer)
                continue
            c, p, peer = conns[fd]
            try:
                data = c.recv(2048)
            except OSError:
                data = b''
            if not data:
                del conns[fd]
                c.close()
                continue
            try:
                for _ in range(data.count(b'\n')):
                    c.sendall(('%s %d %s\n' % (name, p, peer[0])).encode())
            except OSError:
                del conns[fd]
                c.close()


def tcp_hold(addr, port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.bind((src, 0))
        s.connect((addr, port))
    except OSError as e:
        print('ERR %s' % errno.errorcode.get(e.errno, str(e)), flush=True)
        return
    for _ in sys.stdin:
        try:
            s.sendall(b'ping\n')
            data = b''
            while not data.endswith(b'\n'):
                chunk = s.recv(256)
                if not chunk:
                    raise ConnectionResetError(errno.ECONNRESET, 'closed')
                data += chunk
            print(data.decode().strip(), flush=True)
        except socket.timeout:
            print('ERR timeout', flush=True)
        except OSError as e:
            print('ERR %s' % errno.errorcode.get(e.errno, str(e)),
                  flush=True)


def udp_burst(addr, port, src, sport, count):
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, sport + i))
        s.sendto(b'ping', (addr, port))
        socks.append(s)
    for s in socks:
        s.close()
    print('sent %d' % count)


def tcp(addr, port, src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        if src:
            s.bind((src, 0))
        s.connect((addr, port))
        data = b''
        while not data.endswith(b'\n'):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        print(data.decode().strip() or 'ERR empty')
    except socket.timeout:
        print('ERR timeout')
    except OSError as e:
        print('ERR %s' % errno.errorcode.get(e.errno, str(e)))
    finally:
        s.close()


def udp(addr, port, src, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(2)
    try:
        s.bind((src, sport))
        s.connect((addr, port))
        s.send(b'ping')
        print(s.recv(2048).decode().strip())
    except socket.timeout:
        print('ERR timeout')
    except OSError as e:
        print('ERR %s' % errno.errorcode.get(e.errno, str(e)))
    finally:
        s.close()


def dns_question(name, qid=0x4b56):
    q = b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0'
    return struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0) + q + \
        struct.pack('!HH', 1, 1)


def dns_skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xc0:
            return off + 2
        off += 1 + n


def serve_dns(addr, answer, readyfile):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    ready(readyfile)
    ip = socket.inet_aton(answer)
    while True:
        msg, peer = s.recvfrom(2048)
        if len(msg) < 12:
            continue
        qid, flags, qd = struct.unpack('!HHH', msg[:6])
        end = dns_skip_name(msg, 12) + 4
        question = msg[12:end]
        qtype = struct.unpack('!H', msg[end - 4:end - 2])[0]
        an = 1 if qtype == 1 else 0
        reply = struct.pack('!HHHHHH', qid, 0x8180 | (flags & 0x0100), 1, an,
                            0, 0) + question
        if an:
            reply += struct.pack('!HHHIH', 0xc00c, 1, 1, 60, 4) + ip
        s.sendto(reply, peer)


def dns(server, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(dns_question(name), (server, 53))
        msg = s.recv(4096)
    except socket.timeout:
        print('ERR timeout')
        return
    except OSError as e:
        print('ERR %s' % errno.errorcode.get(e.errno, str(e)))
        return
    flags, qd, an = struct.unpack('!HHH', msg[2:8])
    rcode = flags & 0xf
    if rcode:
        print('ERR rcode=%d' % rcode)
        return
    off = 12
    for _ in range(qd):
        off = dns_skip_name(msg, off) + 4
    out = []
    for _ in range(an):
        off = dns_skip_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack('!HHIH', msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    print(' '.join(out) if out else 'ERR noanswer')


def main(argv):
    cmd = argv[1]
    if cmd == 'serve-tcp':
        serve_tcp(argv[2], [int(p) for p in argv[3].split(',')], argv[4],
                  argv[5])
    elif cmd == 'serve-udp':
        serve_udp(argv[2], [int(p) for p in argv[3].split(',')], argv[4],
                  argv[5])
    elif cmd == 'serve-hold':
        serve_hold(argv[2], [int(p) for p in argv[3].split(',')], argv[4],
                   argv[5])
    elif cmd == 'tcp-hold':
        tcp_hold(argv[2], int(argv[3]), argv[4])
    elif cmd == 'udp-burst':
        udp_burst(argv[2], int(argv[3]), argv[4], int(argv[5]),
                  int(argv[6]))
    elif cmd == 'serve-dns':
        serve_dns(argv[2], argv[3], argv[4])
    elif cmd == 'tcp':
        tcp(argv[2], int(argv[3]), argv[4] if len(argv) > 4 else None)
    elif cmd == 'udp':
        udp(argv[2], int(argv[3]), argv[4], int(argv[5]))
    elif cmd == 'dns':
        dns(argv[2], argv[3])
    else:
        sys.exit('unknown command %r' % cmd)


if __name__ == '__main__':
    main(sys.argv)

#!/usr/bin/env python3
"""A tiny DNS server on loopback for check-static.sh: answers A queries for the names given with
127.0.0.1, an empty NOERROR for their other record types, NXDOMAIN for every other name, and logs
each question on stdout. It exists to prove that the static binary resolves names through
/etc/resolv.conf by itself (no glibc NSS plugin); it never forwards anything anywhere.

    fake_dns.py ADDRESS NAME...      # e.g. 127.0.0.35 graph.dns.test
"""
import socket
import struct
import sys


def main() -> None:
    address, names = sys.argv[1], {n.lower().rstrip(".") for n in sys.argv[2:]}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    print(f"listening on {address}:53", flush=True)
    while True:
        query, peer = sock.recvfrom(4096)
        try:
            answer = respond(query, names)
        except (IndexError, struct.error):
            continue  # not a DNS question we understand: no answer, the client times out
        sock.sendto(answer, peer)


def respond(query: bytes, names: set) -> bytes:
    (tid, flags, qdcount) = struct.unpack(">HHH", query[:6])
    labels, i = [], 12
    while query[i]:
        labels.append(query[i + 1 : i + 1 + query[i]].decode("ascii", "replace"))
        i += 1 + query[i]
    qtype, _qclass = struct.unpack(">HH", query[i + 1 : i + 5])
    question = query[12 : i + 5]
    name = ".".join(labels).lower()
    print(f"query {name} type {qtype}", flush=True)
    rd = flags & 0x0100
    if name not in names:
        header = struct.pack(">HHHHHH", tid, 0x8003 | rd, 1, 0, 0, 0)  # NXDOMAIN
        return header + question
    if qtype != 1:
        return struct.pack(">HHHHHH", tid, 0x8080 | rd, 1, 0, 0, 0) + question  # NOERROR, empty
    record = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    return struct.pack(">HHHHHH", tid, 0x8080 | rd, 1, 1, 0, 0) + question + record


if __name__ == "__main__":
    main()

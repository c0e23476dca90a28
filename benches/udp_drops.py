#!/usr/bin/env python3
"""Where UDP datagrams were dropped during one run, per process, from the kernel's own
per-socket counts (the `drops` column of /proc/net/udp and /proc/net/udp6).

    udp_drops.py LISTEN_PORT SERVER_PID PEER_PID CLIENT_PID

Samples every 100 ms until CLIENT_PID exits (its sockets close with it, so the largest
value seen per socket is kept), then once more for the server and the peer. Prints one
line of JSON: drops at the server's listener sockets (local port LISTEN_PORT), at its
other sockets (relay sockets), at the peer's and at the client's sockets. Sockets are
matched to processes (and their descendants) by inode (/proc/PID/fd). Only counts what happened while sampling:
every socket is fresh (the server's and the peer's counts are taken as a baseline at start).
"""
import json
import os
import sys
import time


def socket_table():
    """inode -> (local port, drops) for every UDP socket of this network namespace."""
    out = {}
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if len(p) < 13:
                        continue
                    port = int(p[1].rsplit(":", 1)[1], 16)
                    out[int(p[9])] = (port, int(p[-1]))
        except OSError:
            pass
    return out


def family(pid):
    """PID and its descendants (a `timeout` wrapper's child, say)."""
    out, todo = [], [pid]
    while todo and len(out) < 64:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def inodes(pid):
    """Socket inodes of PID and its descendants."""
    found = set()
    for p in family(pid):
        found |= own_inodes(p)
    return found


def own_inodes(pid):
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                found.add(int(link[8:-1]))
    except OSError:
        pass
    return found


def main():
    listen_port, server, peer, client = (int(a) for a in sys.argv[1:5])
    base = socket_table()
    start = {}
    for pid in (server, peer):
        for ino in inodes(pid):
            if ino in base:
                start[ino] = base[ino][1]
    seen = {}  # inode -> (owner, port, max drops)

    def sample(pids):
        table = socket_table()
        for who, pid in pids:
            for ino in inodes(pid):
                if ino in table:
                    port, drops = table[ino]
                    prev = seen.get(ino, (who, port, 0))[2]
                    seen[ino] = (who, port, max(prev, drops - start.get(ino, 0)))

    everyone = [("server", server), ("peer", peer), ("client", client)]
    deadline = time.time() + 600
    while os.path.exists(f"/proc/{client}") and time.time() < deadline:
        sample(everyone)
        time.sleep(0.1)
    sample([("server", server), ("peer", peer)])
    r = {"server_listener": 0, "server_relay": 0, "peer": 0, "client": 0}
    for who, port, drops in seen.values():
        if who == "server":
            r["server_listener" if port == listen_port else "server_relay"] += drops
        else:
            r[who] += drops
    print(json.dumps(r))


if __name__ == "__main__":
    main()

"""Regenerates tests/data/modula_pylibmc.json and
tests/data/crc32_python_memcached.json: on which server pylibmc (default
behaviors: libmemcached's modula distribution and default hash) and
python-memcached (crc32) store each of a fixed key set, for lists of 1 to 10
servers. Not needed to run the tests; needs Debian's python3-pylibmc,
python3-memcache and python3-pymemcache, and memcached:

    /usr/bin/python3 tests/tools/gen_python_hash_tables.py

It starts its own memcached processes on free loopback ports, lets each
library store every key, then asks every server which keys it holds (so the
tables record where the libraries really put the keys), and stops them.
"""

import json
import os
import socket
import subprocess
import sys
import time

import memcache
import pylibmc
from pymemcache.client.base import Client as Probe

SIZES = [1, 2, 3, 4, 5, 7, 10]


def keys():
    seed = 12345
    out = ["key%d" % i for i in range(1000)]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-./|#"
    for _ in range(700):
        seed = (seed * 1103515245 + 12345) % 2**32
        length = 1 + seed % 60
        chars = []
        for _ in range(length):
            seed = (seed * 1103515245 + 12345) % 2**32
            chars.append(alphabet[seed % len(alphabet)])
        out.append("".join(chars))
    for i in range(50):
        out.append("user:%d:" % i + "x" * (200 + i % 40))
    # non-ASCII keys: both libraries send them UTF-8 encoded
    unicode = ["ключ", "键", "clé", "😀", "ü", "日本語キー", "Ελληνικά", "𝄞𝄞"]
    for i in range(250):
        out.append("%s-%d" % (unicode[i % len(unicode)], i))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(n):
    procs, servers = [], []
    for _ in range(n):
        port = free_port()
        args = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        procs.append(subprocess.Popen(args))
        servers.append("127.0.0.1:%d" % port)
    for server in servers:
        host, port = server.split(":")
        for _ in range(100):
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    return procs, servers


def locate(servers, key_list):
    """The index of the server holding each key (-1: none)."""
    found = [-1] * len(key_list)
    index = {key: i for i, key in enumerate(key_list)}
    for s, server in enumerate(servers):
        host, port = server.split(":")
        probe = Probe((host, int(port)), allow_unicode_keys=True)
        for start_at in range(0, len(key_list), 100):
            for key in probe.get_many(key_list[start_at:start_at + 100]):
                key = key.decode("utf-8") if isinstance(key, bytes) else key
                if found[index[key]] != -1:
                    raise RuntimeError("%r stored twice" % key)
                found[index[key]] = s
        probe.flush_all()
        probe.close()
    if -1 in found:
        raise RuntimeError("%d keys not stored" % found.count(-1))
    return found


def table(library, version, placements, key_list):
    return {
        "generator": "tests/tools/gen_python_hash_tables.py",
        library: version,
        "format": "keys: one string, keys joined by newlines; server: the index "
        "into servers of each key's server, comma-separated",
        "keys": "\n".join(key_list),
        "placements": placements,
    }


def main():
    key_list = keys()
    pylibmc_placements, memcache_placements = {}, {}
    for n in SIZES:
        procs, servers = start(n)
        try:
            name = "%d server%s" % (n, "" if n == 1 else "s")
            client = pylibmc.Client(servers)
            for key in key_list:
                client.set(key, b"1")
            pylibmc_placements[name] = {
                "servers": servers,
                "server": ",".join(map(str, locate(servers, key_list))),
            }
            client.disconnect_all()
            client = memcache.Client(servers)
            for key in key_list:
                if not client.set(key, b"1"):
                    raise RuntimeError("python-memcached did not store %r" % key)
            memcache_placements[name] = {
                "servers": servers,
                "server": ",".join(map(str, locate(servers, key_list))),
            }
            client.disconnect_all()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    data = os.path.join(os.path.dirname(__file__), "..", "data")
    outputs = [
        ("modula_pylibmc.json", table("pylibmc", "%s (libmemcached %s)" % (
            pylibmc.__version__, pylibmc.libmemcached_version), pylibmc_placements, key_list)),
        ("crc32_python_memcached.json", table("python-memcached", memcache.__version__,
                                              memcache_placements, key_list)),
    ]
    for name, content in outputs:
        with open(os.path.join(data, name), "w", encoding="utf-8") as f:
            json.dump(content, f, ensure_ascii=False, indent=2)  # the layout deno fmt keeps
            f.write("\n")
        print("wrote tests/data/%s: %d server lists x %d keys" % (name, len(SIZES), len(key_list)))


if __name__ == "__main__":
    sys.exit(main())

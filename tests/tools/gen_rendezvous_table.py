"""Regenerates tests/data/rendezvous_pymemcache.json: where pymemcache's own
HashClient (rendezvous hashing, murmur3) places a fixed key set, for several
server lists. Not needed to run the tests; needs Python 3 and a pymemcache
checkout or installation:

    python3 tests/tools/gen_rendezvous_table.py [path/containing/pymemcache]

Nothing connects to the servers: pymemcache's clients connect lazily.
"""

import json
import os
import sys

if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])

import pymemcache  # noqa: E402
from pymemcache.client.hash import HashClient  # noqa: E402

CONFIGS = {
    "one server": ["127.0.0.1:11211"],
    "two servers": ["127.0.0.1:11211", "127.0.0.1:11212"],
    "three servers": ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"],
    "three servers without the second": ["10.0.0.1:11211", "10.0.0.3:11211"],
    "mixed names, IPv6 and a unix socket": [
        "cache-a.example:11211",
        "cache-b.example:11311",
        "[::1]:11211",
        "unix:/tmp/memcached.sock",
        "localhost",
    ],
    "ten servers": ["192.168.1.%d:11211" % (10 + i) for i in range(10)],
}


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
    # non-ASCII: pymemcache's murmur3 hashes each code point's low byte
    unicode = ["ключ", "键", "clé", "😀", "ü", "日本語キー", "Ελληνικά", "𝄞𝄞"]
    for i in range(250):
        out.append("%s-%d" % (unicode[i % len(unicode)], i))
    return out


def chosen_client(client, key):
    """The client pymemcache's HashClient picks for key. Its private
    _get_client returns the client alone in released versions (4.0.0
    included) but a (client, key) pair on pymemcache's main branch; take
    either."""
    result = client._get_client(key)
    if isinstance(result, tuple):
        result = result[0]
    if result is None or not hasattr(result, "server"):
        raise RuntimeError(
            "pymemcache %s: HashClient._get_client(%r) returned %r, not a client"
            % (pymemcache.__version__, key, result)
        )
    return result


def main():
    key_list = keys()
    placements = {}
    for name, servers in CONFIGS.items():
        client = HashClient(servers, allow_unicode_keys=True)
        nodes = [client._make_client_key(s) for s in client.clients]
        index = {node: i for i, node in enumerate(nodes)}
        server = []
        for key in key_list:
            chosen = chosen_client(client, key)
            server.append(index[client._make_client_key(chosen.server)])
        placements[name] = {
            "servers": servers,
            "nodes": nodes,
            "server": ",".join(str(i) for i in server),
        }
    table = {
        "generator": "tests/tools/gen_rendezvous_table.py",
        "pymemcache": pymemcache.__version__,
        "format": "keys: one string, keys joined by newlines; server: the index "
        "into servers of each key's server, comma-separated",
        "keys": "\n".join(key_list),
        "placements": placements,
    }
    out = os.path.join(os.path.dirname(__file__), "..", "data", "rendezvous_pymemcache.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(table, f, ensure_ascii=False, indent=2)  # the layout deno fmt keeps
        f.write("\n")
    print("wrote %s: %d server lists x %d keys" % (out, len(CONFIGS), len(key_list)))


main()

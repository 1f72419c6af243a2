"""Regenerates tests/data/xxh3_vectors.json: XXH3-64 (xxhash's reference C
code, through the Python `xxhash` package) of fixed inputs of every length
class (0-16, 17-128, 129-240, over 240 bytes, across block boundaries), with
seed 0, small and large seeds, and the seed memcached's proxy derives from a
pool's `seed` string (XXH3_64bits of it). Also where jump consistent hashing
(memcached's proxy_jump_hash.c, written out below) puts hashes, as a second
reading of that loop. Not needed to run the tests; needs Python 3 with
xxhash (Debian: python3-xxhash):

    /usr/bin/python3 tests/tools/gen_xxh3_vectors.py > tests/data/xxh3_vectors.json
"""

import json

import xxhash


def data(n):
    """Deterministic bytes: a 32-bit LCG's high bytes."""
    out = bytearray()
    x = 2463534242
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append(x >> 24)
    return bytes(out)


LENGTHS = list(range(0, 257)) + [
    319, 320, 321, 511, 512, 1023, 1024, 1025, 1087, 1088, 1089,
    2047, 2048, 2049, 2240, 3000, 4096, 10000,
]
SEED_STRINGS = ["", "a", "memkit", "pool seed"]
SEEDS = [0, 1, 0x9E3779B1, 2**63 + 12345, 2**64 - 1] + [
    xxhash.xxh3_64_intdigest(s.encode()) for s in SEED_STRINGS
]


def jump(h, buckets):
    """proxy_jump_hash.c's loop: 64-bit LCG, doubles as in C."""
    b, j = -1, 0
    while j < buckets:
        b = j
        h = (h * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * (float(1 << 31) / float((h >> 33) + 1)))
    return b


def main():
    vectors = []
    for n in LENGTHS:
        d = data(n)
        vectors.append({
            "length": n,
            "hashes": [str(xxhash.xxh3_64_intdigest(d, seed=s)) for s in SEEDS],
        })
    keys = ["key%d" % i for i in range(200)] + ["", "a", "x" * 250]
    jumps = []
    for buckets in [1, 2, 3, 5, 10, 64, 1000]:
        jumps.append({
            "buckets": buckets,
            "placed": [jump(xxhash.xxh3_64_intdigest(k.encode()), buckets) for k in keys],
            "seeded": [jump(xxhash.xxh3_64_intdigest(k.encode(), seed=SEEDS[-2]), buckets) for k in keys],
        })
    print(json.dumps({
        "generator": "tests/tools/gen_xxh3_vectors.py, xxhash " + xxhash.XXHASH_VERSION,
        "input": "byte i of an input of length n: data(n) in the generator (a 32-bit LCG's high bytes)",
        "seedStrings": SEED_STRINGS,
        "seeds": [str(s) for s in SEEDS],
        "vectors": vectors,
        "jumpKeys": keys,
        "jumpSeedString": SEED_STRINGS[-2],
        "jump": jumps,
    }, indent=1))


main()

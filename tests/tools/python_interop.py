"""The Python side of tests/interop/python_interop_test.ts: a Python app sharing a
memcached cache with a TypeScript one.

    python3 tests/tools/python_interop.py check
    python3 tests/tools/python_interop.py write|read <library> <servers> <prefix>

<library> is "pylibmc" (cachelib's MemcachedCache, which picks pylibmc),
"python-memcached" (cachelib's MemcachedCache over memcache.Client) or
"pymemcache" (pymemcache's HashClient with its pickle serde); <servers> is
comma-separated "host:port". `write` stores VALUES (keys "<prefix><name>")
and prints, as JSON, what the TypeScript side must read for each (tagged as
in tests/tools/gen_pickles_python.py); `read` reads what the TypeScript side
wrote back under "<prefix>ts-<name>" and prints the names whose value is not
what Python must get (empty: all equal, types included).
"""

import json
import math
import sys

MAX_SAFE = 2**53 - 1

VALUES = {
    "dict": {"a": 1, "b": [1, 2], "c": {"d": None}},
    "list": [1, "two", 3.5, None, True],
    "tuple": (1, "a", (2.5,)),
    "float": 2.5,
    "negative_float": -1e-300,
    "none": None,
    "true": True,
    "false": False,
    "str": "héllo ✓ 😀",
    "empty_str": "",
    "int": 42,
    "negative_int": -7,
    "int_2_63": 2**63 + 5,
    "int_beyond_2_64": 2**70 + 1,
    "negative_big_int": -(2**80),
    "bytes": b"\x00\xffab",
    "bytearray": bytearray(b"xy"),
    "set": {1, 2, 3},
    "str_set": {"a", "b"},
    "frozenset": frozenset({"x", 1}),
    "empty_dict": {},
    "empty_list": [],
    "unicode_dict": {"ключ": "значение", "__proto__": 1, "constructor": 2},
    "int_keys": {1: "one", 2: "two"},
    "nested": {
        "users": [{"name": "Ada", "tags": {"admin", "dev"}, "score": 1.5, "id": 2**65}],
        "raw": b"\x01\x02",
        "t": (1, (2, 3)),
        "none": None,
        3: "int key",
        (1, 2): "tuple key",
    },
    "big_list": list(range(2000)),
}

# Written compressed (flag 9, zlib) by pylibmc and python-memcached when asked (min_compress_len), and written back
# compressed by the TypeScript side as "ts-zipped" (pymemcache's pickle_serde reads no compressed values).
ZIPPED = {"text": "abc" * 500, "numbers": list(range(300)), "nested": {"t": (1, 2)}}


def tag(value):
    """What the TypeScript side reads, tagged (see gen_pickles_python.py)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE <= value <= MAX_SAFE else {"$int": str(value)}
    if isinstance(value, float):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[tag(k), tag(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {"$set": [tag(v) for v in value]}
    raise TypeError(type(value))


def read_in_typescript(library, value):
    """A top-level bool is what the library stores: pylibmc stores True as the integer 1."""
    if library == "pylibmc" and isinstance(value, bool):
        return int(value)
    return value


def back_in_python(value, hashable=False):
    """What Python reads after the TypeScript side wrote back what it read.
    Lossy on the way: tuples become lists (tuples where Python needs
    something hashable: dict keys, set items), bytearray becomes bytes,
    frozenset becomes set (frozenset where hashable)."""
    if isinstance(value, (list, tuple)):
        items = [back_in_python(v, hashable) for v in value]
        return tuple(items) if hashable else items
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (set, frozenset)):
        items = {back_in_python(v, True) for v in value}
        return frozenset(items) if hashable else items
    if isinstance(value, dict):
        return {back_in_python(k, True): back_in_python(v) for k, v in value.items()}
    return value


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def client(library, servers, prefix):
    """An object with get/set/inc, as the Python app would use it."""
    if library == "pymemcache":
        from pymemcache import serde
        from pymemcache.client.hash import HashClient

        hash_client = HashClient(
            [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in servers], serde=serde.pickle_serde
        )

        class Prefixed:
            def get(self, key):
                return hash_client.get(prefix + key)

            def set(self, key, value):
                return hash_client.set(prefix + key, value, noreply=False)

            def inc(self, key, delta):
                return hash_client.incr(prefix + key, delta)

        return Prefixed()
    from cachelib import MemcachedCache

    if library == "pylibmc":
        cache = MemcachedCache(servers, key_prefix=prefix)
        assert type(cache._client).__module__.startswith("pylibmc"), type(cache._client)
    elif library == "python-memcached":
        import memcache

        cache = MemcachedCache(memcache.Client(servers), key_prefix=prefix)
    else:
        raise SystemExit("unknown library " + library)
    return cache


def main():
    if sys.argv[1] == "check":
        import cachelib  # noqa: F401
        import memcache  # noqa: F401
        import pylibmc  # noqa: F401
        import pymemcache  # noqa: F401

        print("ok")
        return
    mode, library, servers, prefix = sys.argv[1:5]
    cache = client(library, servers.split(","), prefix)
    if mode == "write":
        for name, value in VALUES.items():
            if not cache.set(name, value):
                raise SystemExit("%s: could not store %s" % (library, name))
        if not cache.set("counter", 10):
            raise SystemExit("could not store counter")
        expected = {name: tag(read_in_typescript(library, v)) for name, v in VALUES.items()}
        if library != "pymemcache":
            if not cache._client.set(prefix + "zipped", ZIPPED, 0, 1):  # time, min_compress_len
                raise SystemExit("could not store zipped")
            expected["zipped"] = tag(ZIPPED)
        print(json.dumps(expected))
    elif mode == "read":
        wrong = {}
        for name, value in VALUES.items():
            expected = back_in_python(read_in_typescript(library, value))
            actual = cache.get("ts-" + name)
            if not same(actual, expected):
                wrong[name] = "got %r, expected %r" % (actual, expected)
        if library != "pymemcache":
            zipped = cache.get("ts-zipped")
            if not same(zipped, back_in_python(ZIPPED)):
                wrong["ts-zipped"] = "got %r" % (zipped,)
        # Counters: the TypeScript side took counter from 10 to 15 to -5 and created ts-counter at 41.
        counter = cache.get("counter")
        if not same(counter, -5):
            wrong["counter"] = "got %r, expected -5" % (counter,)
        if library != "pymemcache":  # cachelib's inc: read, add, write
            bumped = cache.inc("ts-counter", 1)
            if not same(bumped, 42):
                wrong["ts-counter"] = "inc gave %r, expected 42" % (bumped,)
        else:
            bumped = cache.inc("ts-counter", 1)
            if bumped != 42:
                wrong["ts-counter"] = "incr gave %r, expected 42" % (bumped,)
        print(json.dumps(wrong))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()

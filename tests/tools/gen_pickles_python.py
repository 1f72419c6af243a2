"""Regenerates tests/data/pickles_python.json: pickles written by Python
itself (every protocol, 0 to 5) of the values PickleSerde reads, with what
each must read as, and pickles of things it must refuse (classes, code),
with the opcode or global the error must name. Needs only Python 3:

    python3 tests/tools/gen_pickles_python.py

Expected values are JSON with tags for what JSON lacks: {"$int": "digits"}
(beyond 2^53-1), {"$float": "nan" | "inf" | "-inf" | "-0.0"},
{"$bytes": "hex"}, {"$dict": [[key, value], ...]}, {"$set": [...]}; lists
and tuples are JSON arrays. Each value's expectation is stored once, as JSON
text, under "expect".
"""

import collections
import datetime
import decimal
import json
import math
import os
import pickle
import sys
import zlib

MAX_SAFE = 2**53 - 1


def tag(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE <= value <= MAX_SAFE else {"$int": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"$float": "nan"}
        if math.isinf(value):
            return {"$float": "inf" if value > 0 else "-inf"}
        if value == 0 and math.copysign(1, value) < 0:
            return {"$float": "-0.0"}
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


shared = [1, 2]
VALUES = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "small int": 7,
    "byte ints": [0, 255, 256, 65535, 65536, -1, -128, -129],
    "int32 edges": [2**31 - 1, -(2**31), 2**31, -(2**31) - 1],
    "safe edges": [MAX_SAFE, -MAX_SAFE],
    "beyond 2^53": [MAX_SAFE + 1, -(MAX_SAFE + 2), 2**63, 2**64 - 1, 2**64, -(2**64)],
    "huge int": 3**500,
    "negative huge int": -(7**300),
    "floats": [0.0, 1.5, -2.25, 1e300, 5e-324, 0.1, 123456789.125],
    "special floats": [float("nan"), float("inf"), float("-inf"), -0.0],
    "empty str": "",
    "ascii str": "hello world",
    "unicode str": "héllo ✓ ключ 键 😀",
    "control chars": "a\nb\rc\\d\x00e\u2028",
    "long str": "abc" * 100,
    "lone surrogate": "a\ud800b",
    "empty bytes": b"",
    "bytes": b"\x00\x01\x7f\x80\xff",
    "long bytes": bytes(range(256)) + b"xy",
    "bytearray": bytearray(b"\x00ab\xff"),
    "empty bytearray": bytearray(),
    "empty list": [],
    "list": [1, "two", 3.5, None, True],
    "long list": list(range(1001)),
    "empty tuple": (),
    "tuples": [(1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
    "empty dict": {},
    "dict": {"a": 1, "b": [1, 2], "c": {"d": None}},
    "big dict": {"k%d" % i: i for i in range(1001)},
    "dict int keys": {1: "one", 2: "two"},
    "dict mixed keys": {"a": 1, 2: "b", (1, 2): "tuple", None: 0, b"x": 1.5, frozenset({1}): "fs"},
    "nested dict with int key": {"outer": {3: "three"}, "list": [{4: "four"}]},
    "proto keys": {"__proto__": 1, "constructor": 2, "toString": 3, "hasOwnProperty": 4},
    "empty set": set(),
    "set": {1, 2, 3},
    "str set": {"a", "b"},
    "frozenset": frozenset({1, "x"}),
    "empty frozenset": frozenset(),
    "big set": set(range(1001)),
    "shared refs": [shared, shared, {"s": shared}],
    "nested": {
        "users": [{"name": "Ada", "tags": {"admin", "dev"}, "score": 1.5, "id": 2**65}],
        "raw": b"\x01\x02",
        "t": (1, (2, (3, "x"))),
        "none": None,
        "flags": [True, False],
    },
}

recursive = []
recursive.append(recursive)


class Point:
    def __init__(self, x):
        self.x = x


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Slotted:
    __slots__ = ("a",)

    def __init__(self):
        self.a = 1


REFUSED = {
    "class instance": (Point(1), ["__main__.Point", "copy_reg._reconstructor", "NEWOBJ", "BUILD"]),
    "os.system": (Evil(), ["posix.system", "nt.system"]),
    "datetime": (datetime.datetime(2020, 1, 2, 3, 4, 5), ["datetime.datetime"]),
    "OrderedDict": (collections.OrderedDict(a=1), ["collections.OrderedDict"]),
    "complex": (complex(1, 2), ["builtins.complex", "__builtin__.complex"]),
    "Decimal": (decimal.Decimal("1.5"), ["decimal.Decimal"]),
    "slotted": (Slotted(), ["copy_reg.", "copyreg.", "__main__.Slotted", "NEWOBJ"]),
    "range": (range(3), ["builtins.range", "__builtin__.range", "__builtin__.xrange"]),
}


def main():
    cases = []
    for name, value in VALUES.items():
        for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
            cases.append({"name": name, "protocol": protocol, "pickle": pickle.dumps(value, protocol).hex()})
    refused = []
    for name, (value, needles) in REFUSED.items():
        for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
            try:
                data = pickle.dumps(value, protocol)
            except Exception:
                continue  # slotted objects cannot be pickled in protocols 0 and 1
            refused.append({"name": name, "protocol": protocol, "pickle": data.hex(), "error": needles})
    compressed = []
    for name in ["dict", "nested", "long str", "big set"]:
        data = pickle.dumps(VALUES[name], pickle.HIGHEST_PROTOCOL)
        compressed.append({"name": name, "flags": 9, "value": zlib.compress(data).hex()})
    out = {
        "generator": "tests/tools/gen_pickles_python.py",
        "python": sys.version.split()[0],
        "format": "pickle: hex; expect: each value's expected reading, JSON text with $int/$float/$bytes/"
        "$dict/$set tags (see the generator)",
        "expect": {name: json.dumps(tag(value)) for name, value in VALUES.items()},
        "cases": cases,
        "recursive list": {p: pickle.dumps(recursive, p).hex() for p in range(0, pickle.HIGHEST_PROTOCOL + 1)},
        "refused": refused,
        "compressed": compressed,
    }
    path = os.path.join(os.path.dirname(__file__), "..", "data", "pickles_python.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)  # ASCII: a lone surrogate is not UTF-8
        f.write("\n")
    print("wrote tests/data/pickles_python.json: %d cases, %d refused" % (len(cases), len(refused)))


if __name__ == "__main__":
    main()

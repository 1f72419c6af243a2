"""One benchmark child for pymemcache (Debian's python3-pymemcache), the
Python peer: measures S1, S4 and S5 as bench/runner.ts does and prints one
`RESULT <json>` line per scenario. pymemcache is synchronous: one request
in flight at a time, so S2/S3 (50 in flight) and S7 do not apply.

Run by bench/bench.ts as `/usr/bin/python3 bench/runner_pymemcache.py <config json>`.
"""

import json
import sys
import time

from pymemcache.client.base import Client

GET_KEYS = 1000
VALUE_BYTES = 100


def get_key(i):
    return "bench:k%05d" % (i % GET_KEYS)


def filler(length, seed=0):
    return bytes(97 + ((i + seed) % 26) for i in range(length))


def percentiles(lat):
    s = sorted(lat)
    if not s:
        return 0.0, 0.0
    at = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1e6
    return at(0.5), at(0.99)


def check(value, length, what):
    if value is None or len(value) != length:
        raise SystemExit("%s: expected a %d-byte value, got %r" % (what, length, value if value is None else len(value)))


def timed(ms, op):
    """Runs op(i) back to back for ms; returns (ops, seconds, cpu seconds, latencies)."""
    lat = []
    start = time.perf_counter()
    cpu0 = time.process_time()
    deadline = start + ms / 1000
    t = start
    i = 0
    while t < deadline:
        op(i)
        i += 1
        t2 = time.perf_counter()
        lat.append(t2 - t)
        t = t2
    return i, t - start, time.process_time() - cpu0, lat


def main():
    config = json.loads(sys.argv[1])
    # Defaults, as the other peers: no noreply (pymemcache's own default is
    # noreply=True for sets; the bench waits for every reply).
    client = Client(("127.0.0.1", config["port"]), default_noreply=False)
    warmup, duration = config["warmupMs"], config["durationMs"]
    keys = [get_key(i) for i in range(GET_KEYS)]
    for scenario in config["scenarios"]:
        if scenario == "S1":
            def op(i):
                check(client.get(keys[i % GET_KEYS]), VALUE_BYTES, "S1 get")
            timed(warmup, op)
            ops, seconds, _, lat = timed(duration, op)
            p50, p99 = percentiles(lat)
            result = {"scenario": "S1", "value": ops / seconds, "p50": p50, "p99": p99}
        elif scenario == "S4":
            n = config["manyKeys"]
            batches = [keys[s:s + n] for s in range(0, GET_KEYS, n)]

            def op(i):
                found = client.get_many(batches[i % len(batches)])
                if len(found) != n:
                    raise SystemExit("S4: found %d of %d keys" % (len(found), n))
            timed(warmup, op)
            ops, seconds, _, _ = timed(duration, op)
            result = {"scenario": "S4", "value": ops * n / seconds}
        elif scenario == "S5":
            size = config["bigBytes"]
            key = "big:pymemcache"
            big = filler(size, 7)

            def op(_):
                client.set(key, big)
                check(client.get(key), size, "S5 get")
            timed(warmup, op)
            ops, seconds, cpu, _ = timed(duration, op)
            result = {"scenario": "S5", "value": ops * 2 * size / seconds / 1e6, "cpu": cpu / ops * 1e6}
        else:
            raise SystemExit("pymemcache runs S1, S4 and S5 only, not " + scenario)
        sys.stdout.write("RESULT " + json.dumps(result) + "\n")
        sys.stdout.flush()
    client.close()


main()

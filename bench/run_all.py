"""Run every benchmark and fault test in order, then print one summary table.

Run: make bench   (or .venv/bin/python bench/run_all.py [--quick])
Exit status: 1 if a fault test failed or a script crashed; budgets missed are reported only.
"""
# ruff: noqa: E402

from __future__ import annotations

import os.path
import sys

# This folder must not shadow the standard library (bench/queue.py vs `queue`).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import json
import subprocess
import time

from bench.common import PYTHON, RESULTS, ROOT, loop_seconds, machine

STEPS = [
    ("intake", ["bench/intake.py"], 600),
    ("timing", ["bench/timing.py"], 600),
    # Both sizes in one run; the first run seeds each database (about 10 minutes for 1,000,000).
    # Each part at each size in turn, twice: one size alone could meet a busy minute.
    ("queue", ["bench/queue.py", "--tickets", "100000,1000000", "--rounds", "2"], 3600),
    ("notifications", ["bench/notifications.py"], 900),
    ("faults", ["bench/faults.py"], 1500),
    ("contacts", ["bench/contacts.py"], 900),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(name for name, _, _ in STEPS))
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    RESULTS.unlink(missing_ok=True)
    failures = []
    started = time.monotonic()
    loop = loop_seconds()
    for name, script, limit in STEPS:
        if name not in chosen:
            continue
        print(f"\n=== {name} ===", flush=True)
        try:
            code = subprocess.run(
                [PYTHON, *script], cwd=ROOT, timeout=limit, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            print(f"{name}: stopped after {limit} s")
            code = 124
        if code != 0:
            failures.append(f"{name} (exit {code})")
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    took = time.monotonic() - started
    speed = f"10-million-step Python loop {loop:.2f} s"
    print(f"\n=== summary ({machine()}; {speed}; {took:.0f} s) ===")
    print(f"{'what':40s} {'figure':70s} {'budget':28s} verdict")
    for name, _script, _limit in STEPS:
        if name not in chosen:
            continue
        section = data.get(name)
        if section is None:
            print(f"{name:40s} not measured: the script recorded nothing (see its output above)")
            continue
        for item in section["rows"]:
            print(
                f"{item['what'][:40]:40s} {item['figure']:70s} {item['budget']:28s} "
                f"{item['verdict']}"
            )
    if failures:
        print("failed: " + ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

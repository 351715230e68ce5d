#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench-clpeak-report.py - clpeak in the guest as % of clpeak on the host.

Reads the raw outputs scripts/run-bench-clpeak.sh kept (DIR/<side>-<round>.txt,
side native, uml or qemu), takes each test's median over the rounds and
writes the table (markdown) to stdout: every clpeak figure, native beside
each guest, and the guest's as % of native (for the launch latency, native
as % of the guest's: higher is better throughout).
"""
import re
import statistics
import sys
from pathlib import Path


def parse(text):
    out, section = {}, None
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"^(.*\((GBPS|GFLOPS|GIOPS)\))$", s)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^Kernel launch latency : ([0-9.]+) us", s)
        if m:
            out[("Kernel launch latency (us)", "")] = float(m.group(1))
            section = None
            continue
        m = re.match(r"^([A-Za-z0-9 ()/-]+?)\s*: ([0-9.]+)$", s)
        if m and section:
            out[(section, m.group(1))] = float(m.group(2))
    return out


def main():
    d = Path(sys.argv[1])
    runs = {}
    for f in sorted(d.glob("*-*.txt")):
        side = f.stem.rsplit("-", 1)[0]
        runs.setdefault(side, []).append(parse(f.read_text(errors="replace")))
    if "native" not in runs:
        sys.exit("no native runs in %s" % d)
    guests = [g for g in ("uml", "qemu") if g in runs]

    def med(side, key):
        vals = [r[key] for r in runs[side] if key in r]
        return statistics.median(vals) if vals else None

    keys = []
    for r in runs["native"]:
        for k in r:
            if k not in keys:
                keys.append(k)
    hdr = "| test | | native |" + "".join(" %s | %% of native |" % g.upper() for g in guests)
    print(hdr)
    print("|" + "---|" * (3 + 2 * len(guests)))
    for k in keys:
        n = med("native", k)
        row = "| %s | %s | %.2f |" % (k[0], k[1], n)
        for g in guests:
            v = med(g, k)
            if v is None:
                row += " - | - |"
                continue
            lat = k[0].startswith("Kernel launch")
            pct = (n / v if lat else v / n) * 100 if n and v else 0
            row += " %.2f | %.0f%% |" % (v, pct)
        print(row)
    print()
    print("Rounds: " + ", ".join("%s %d" % (s, len(r)) for s, r in runs.items()) + "; medians.")


if __name__ == "__main__":
    main()

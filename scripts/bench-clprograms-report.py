#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench-clprograms-report.py - OpenCL programs in the guest as % of native.

Reads the outputs scripts/run-bench-clprograms.sh kept in DIR:
clpeak-<side>-<round>.txt (clpeak's own lines) and clblast-<side>-<round>.txt
(guest/tests/clblast-bench lines: routine size ms GFLOPS GB/s), side native,
uml or qemu. Takes each figure's median over the rounds and writes two
tables (markdown) to stdout: every clpeak figure and every CLBlast routine
and size, native beside each guest, and the guest's as % of native (for the
launch latency and times, native as % of the guest's: higher is better
throughout).
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


def parse_clblast(text):
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 5:
            out[(f[0].upper(), int(f[1]))] = (float(f[2]), float(f[3]))
    return out


def load(d, prog, parser):
    runs = {}
    for f in sorted(d.glob(prog + "-*-*.txt")):
        side = f.stem[len(prog) + 1:].rsplit("-", 1)[0]
        runs.setdefault(side, []).append(parser(f.read_text(errors="replace")))
    if "native" not in runs:
        sys.exit("no native %s runs in %s" % (prog, d))
    return runs


def table(runs, title_cols, fmt_key, value, lower_better):
    guests = [g for g in ("uml", "qemu") if g in runs]

    def med(side, key):
        vals = [value(r[key]) for r in runs[side] if key in r]
        return statistics.median(vals) if vals else None

    keys = []
    for r in runs["native"]:
        for k in r:
            if k not in keys:
                keys.append(k)
    print("| " + " | ".join(title_cols) + " | native |" +
          "".join(" %s | %% of native |" % g.upper() for g in guests))
    print("|" + "---|" * (len(title_cols) + 1 + 2 * len(guests)))
    for k in keys:
        n = med("native", k)
        row = "| " + " | ".join(fmt_key(k)) + " | %.2f |" % n
        for g in guests:
            v = med(g, k)
            if v is None:
                row += " - | - |"
                continue
            pct = (n / v if lower_better(k) else v / n) * 100 if n and v else 0
            row += " %.2f | %.0f%% |" % (v, pct)
        print(row)
    print()
    print("Rounds: " + ", ".join("%s %d" % (s, len(r)) for s, r in runs.items()) + "; medians.")
    print()


def main():
    d = Path(sys.argv[1])
    print("### clpeak")
    print()
    table(load(d, "clpeak", parse), ["test", ""], lambda k: [k[0], k[1]], lambda v: v,
          lambda k: k[0].startswith("Kernel launch"))
    print("### CLBlast (GFLOPS; the median of 5 timed calls per size and round)")
    print()
    table(load(d, "clblast", parse_clblast), ["routine", "size"],
          lambda k: [k[0], str(k[1])], lambda v: v[1], lambda k: False)


if __name__ == "__main__":
    main()

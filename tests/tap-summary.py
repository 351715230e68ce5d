#!/usr/bin/env python3
"""Sums TAP/KTAP results over every suite of a test run.

Usage: tap-summary.py RESULTS_DIR

RESULTS_DIR holds, per suite, NAME.log (what the suite printed) and NAME.rc
(its exit status); a suite run through meson may leave NAME.json (meson's
testlog.json), whose tests' stdout is read instead of the log.

Counting rules:
- a result line is "ok N ..." or "not ok N ..." at any indentation (KTAP
  nests subtests by four spaces); only leaves count: a result that closes a
  block of nested results is a suite summary, not a test;
- "# SKIP" results count as failed: a skipped test proves nothing;
- fewer results than a top-level plan "1..N" announced: the missing ones fail;
- a suite that printed no result at all, or exited non-zero without any
  failing result, counts one failure of its own.

NAME.time, where present, holds the suite's wall time in seconds; build-NAME.time
the time of a build step (not a suite); run.wall the wall time of the whole run
and run.goal the CI budget it is held against (both optional).

Prints one line per suite with its time, the build steps' times, and ends
with "N passed, N failed".
Exit status 0 only when nothing failed.
"""
import json
import os
import re
import sys

RESULT = re.compile(r"^(?P<indent>[ \t]*)(?P<res>ok|not ok)\s+(?P<num>\d+)\b(?P<rest>.*)$")
PLAN = re.compile(r"^(?P<indent>[ \t]*)1\.\.(?P<n>\d+)\s*(#.*)?$")
STAMP = re.compile(r"^\[[ 0-9.]+\]\s?")


def indent_of(s):
    return len(s.expandtabs(4))


def count_tap(text):
    passed = failed = 0
    names = []
    children_seen = {}
    top_indent = None
    top_plan = None
    top_results = 0
    for raw in text.splitlines():
        line = STAMP.sub("", raw.rstrip("\r\n"))
        m = RESULT.match(line)
        if m:
            d = indent_of(m.group("indent"))
            # a result closes its own level and marks every outer level
            # as having seen a nested result
            parent = children_seen.get(d, False)
            children_seen = {k: True for k in range(d)}
            if top_indent is None or d < top_indent:
                top_indent, top_results = d, 0
            if d == top_indent:
                top_results += 1
            if parent:
                continue
            rest = m.group("rest")
            if re.search(r"#\s*SKIP", rest, re.I):
                failed += 1
                names.append("skipped:" + rest.strip())
            elif m.group("res") == "ok":
                passed += 1
            else:
                failed += 1
                names.append(rest.strip(" -"))
            continue
        p = PLAN.match(line)
        if p and (top_indent is None or indent_of(p.group("indent")) <= top_indent):
            if top_plan is None or indent_of(p.group("indent")) < top_plan[0]:
                top_plan = (indent_of(p.group("indent")), int(p.group("n")))
    missing = 0
    if top_plan is not None and top_indent == top_plan[0] and top_results < top_plan[1]:
        missing = top_plan[1] - top_results
        failed += missing
        names.append("%d planned test(s) never reported" % missing)
    return passed, failed, names


def read_time(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def fmt_time(t):
    return "   -  " if t is None else "%3d:%02d" % (t // 60, t % 60)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    suites = sorted(f[:-3] for f in os.listdir(d) if f.endswith(".rc"))
    total_p = total_f = total_t = 0
    for name in suites:
        with open(os.path.join(d, name + ".rc")) as f:
            rc = int(f.read().strip() or "1")
        jpath = os.path.join(d, name + ".json")
        p = f_ = 0
        notes = []
        if os.path.exists(jpath):
            with open(jpath) as f:
                for line in f:
                    if not line.strip():
                        continue
                    t = json.loads(line)
                    tp, tf, tn = count_tap(t.get("stdout") or "")
                    if tp + tf == 0 or (t.get("result") not in ("OK", "EXPECTEDFAIL") and tf == 0):
                        tf += 1
                        tn.append("%s: %s" % (t.get("name"), t.get("result")))
                    p += tp
                    f_ += tf
                    notes += tn
        else:
            lpath = os.path.join(d, name + ".log")
            text = open(lpath, errors="replace").read() if os.path.exists(lpath) else ""
            p, f_, notes = count_tap(text)
        if p + f_ == 0:
            f_ += 1
            notes.append("no test result reported")
        elif rc != 0 and f_ == 0:
            f_ += 1
            notes.append("suite exited with status %d" % rc)
        total_p += p
        total_f += f_
        t = read_time(os.path.join(d, name + ".time"))
        total_t += t or 0
        print("suite %-26s %s %4d passed, %d failed%s" % (
            name, fmt_time(t), p, f_, ("  (" + "; ".join(notes[:5]) + ")") if notes else ""))
    builds = sorted(f[:-5] for f in os.listdir(d) if f.startswith("build-") and f.endswith(".time"))
    for b in builds:
        t = read_time(os.path.join(d, b + ".time"))
        total_t += t or 0
        print("%-32s %s" % (b.replace("build-", "build ", 1), fmt_time(t)))
    print("%-32s %s" % ("time, suites and builds", fmt_time(total_t)))
    wall = read_time(os.path.join(d, "run.wall"))
    goal = read_time(os.path.join(d, "run.goal"))
    if wall is not None:
        print("%-32s %s%s" % ("wall time (lanes side by side)", fmt_time(wall),
                              "   goal %s on 2 cores from a fresh machine: %s" % (
                                  fmt_time(goal).strip(), "met" if wall <= goal else "MISSED")
                              if goal else ""))
    print("%d passed, %d failed" % (total_p, total_f))
    return 0 if total_f == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Filter for `nbdev_test --do_print`: echo every line, time each notebook, keep the slowest.

    nbdev_test --do_print 2>&1 | python .ci/nbprogress.py TIMES_FILE

nbdev_test prints `Starting <path>` and `- Completed <path>` per notebook (workers run in parallel); this
prefixes each such line with the seconds since CI started (env CI_T0, epoch seconds) and, on `Completed`,
the notebook's own wall time and a running count. At end of input it writes `<seconds>\t<name>` per
notebook to TIMES_FILE, slowest first (notebooks that never completed are listed as `running`).
"""
import os, re, sys, time

t0 = float(os.environ.get("CI_T0", time.time()))
out = sys.argv[1] if len(sys.argv) > 1 else None
starts, times, n_total = {}, {}, int(os.environ.get("CI_N_NB", "0"))
re_start, re_done = re.compile(r"^Starting (.+\.ipynb)\s*$"), re.compile(r"^- Completed (.+\.ipynb)\s*$")
for line in sys.stdin:
    line = line.rstrip("\n")
    now = time.time()
    if m := re_start.match(line):
        name = os.path.basename(m.group(1)); starts[name] = now
        print(f"[ci {now - t0:6.0f}s] nbdev_test: started   {name}", flush=True)
    elif m := re_done.match(line):
        name = os.path.basename(m.group(1)); times[name] = now - starts.get(name, now)
        print(f"[ci {now - t0:6.0f}s] nbdev_test: finished  {name} in {times[name]:.0f} s "
              f"({len(times)}/{n_total or '?'} done)", flush=True)
    else:
        print(line, flush=True)
if out:
    rows = sorted(times.items(), key=lambda kv: -kv[1])
    rows += [(n, None) for n in starts if n not in times]
    with open(out, "w") as f:
        for name, t in rows: f.write(f"{'running' if t is None else f'{t:.0f}'}\t{name}\n")

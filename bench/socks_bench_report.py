"""socks_bench's output: the results table (medians, ratios to the anchors) and the summary of a
perf profile of one proxy client. Kept apart from the lab and the measurements (socks_bench.py)."""
import re
import subprocess

from benchlab import log


def perf_summary(data, out, name, path, what):
    """Writes OUT (share by library, self time by symbol, where the syscalls come from) from the
    perf DATA of proxy NAME on PATH during WHAT, and prints the head of each."""
    def report(*args):
        r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", *args],
                           capture_output=True, text=True, timeout=300)
        return [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    by_dso = report("--no-children", "--sort", "dso", "-g", "none")
    by_sym = report("--no-children", "--sort", "dso,symbol", "-g", "none",
                    "--percent-limit", "0.7")
    syscalls = [l for l in report("--children", "--sort", "symbol", "-g", "none")
                if re.search(r"\b(__GI___libc_write|__libc_sendmsg|__x64_sys_recvmmsg|"
                             r"__x64_sys_sendto|__GI___getrandom|do_syscall_64)\b", l)]
    out.write_text("\n".join(by_dso + [""] + by_sym + [""] + syscalls) + "\n")
    log(f"perf profile of {name} ({path}) during {what}: {out}")
    print(f"\nperf record -g -p <{name}, path {path}> during {what}, 5 s; "
          "share by library:")
    print("\n".join(by_dso[:8]))
    print("including children (where the syscalls come from):")
    print("\n".join(syscalls))
    print("self time by symbol:")
    print("\n".join(by_sym[:25]))


def table(b, paths, order, impaired, load_procs):
    """The Markdown table of bench B's medians: one column per path asked for (ORDER), then the
    ratios to the anchors. PATHS describes each path; IMPAIRED are the relay's paths."""
    cols = [p for p in order if p in b.a.paths]
    size = f"{b.a.mb} MB"
    if any(p in cols for p in impaired) and b.a.impair_mb != b.a.mb:
        size += f" ({b.a.impair_mb} MB impaired)"
    rows = [
        ("down", f"download, 1 stream, {size} (MB/s)", "{:.1f}", True),
        ("up", f"upload, 1 stream, {size} (MB/s)", "{:.1f}", True),
        ("cps1", f"connections/s, sequential ({b.a.cps_seconds:g} s)", "{:.0f}", True),
        ("cps20", f"connections/s, 20 concurrent ({b.a.cps_seconds:g} s)", "{:.0f}", True),
        ("cps20p", f"connections/s, 20 concurrent in {load_procs} load processes "
         f"({b.a.cps_seconds:g} s)", "{:.0f}", True),
        ("cps1c", f"connections/s, sequential, C load and C echo target "
         f"({b.a.cps_seconds:g} s)", "{:.0f}", True),
        ("cps20c", f"connections/s, 20 concurrent threads, C load and C echo target "
         f"({b.a.cps_seconds:g} s)", "{:.0f}", True),
        ("cps1_sustained", f"connections/s, sequential, 3rd back-to-back {b.a.cps_seconds:g} s "
         "run on one process (single measurement)", "{:.0f}", True),
        ("cps1_ccpu", "client-side proxy CPU per sequential connection (µs)", "{:.0f}", False),
        ("cps1_scpu", "server-side CPU per sequential connection (µs)", "{:.0f}", False),
        ("cps1_cwake", "client-side proxy wake-ups per sequential connection", "{:.2f}", False),
        ("cps1_swake", "server-side wake-ups per sequential connection", "{:.2f}", False),
        ("cps20p_ccpu", f"client-side proxy CPU per connection, 20 concurrent in {load_procs} "
         "load processes (µs)", "{:.0f}", False),
        ("cps20p_scpu", f"server-side CPU per connection, 20 concurrent in {load_procs} load "
         "processes (µs)", "{:.0f}", False),
        ("cps1c_ccpu", "client-side proxy CPU per sequential connection, C load (µs)",
         "{:.0f}", False),
        ("cps1c_scpu", "server-side CPU per sequential connection, C load (µs)", "{:.0f}",
         False),
        ("cps20c_ccpu", "client-side proxy CPU per connection, 20 concurrent, C load (µs)",
         "{:.0f}", False),
        ("cps20c_scpu", "server-side CPU per connection, 20 concurrent, C load (µs)",
         "{:.0f}", False),
        ("rss_idle", "proxy RSS idle, fresh process (MiB)", "{:.1f}", False),
        ("rss_1000", f"proxy RSS with {b.a.idle} streams (MiB)", "{:.1f}", False),
        ("rss_per_stream", "RSS per stream (KiB), all the growth from the fresh process",
         "{:.1f}", False),
        ("rss_per_stream2", "RSS per stream (KiB), the second half's growth: per-process and "
         "per-peer costs left out", "{:.1f}", False),
        ("rss_after", f"proxy RSS 3 s after the {b.a.idle} closed (MiB)", "{:.1f}", False),
        ("down_cpu", "client-side proxy CPU per GB downloaded (s)", "{:.2f}", False),
        ("up_cpu", "client-side proxy CPU per GB uploaded (s)", "{:.2f}", False),
        ("down_scpu", "server-side CPU per GB downloaded (s: awgproxy server and its workers, "
         "or ss-server)", "{:.2f}", False),
        ("up_scpu", "server-side CPU per GB uploaded (s)", "{:.2f}", False),
        ("down_cflt", "client-side proxy minor page faults per GB downloaded", "{:.0f}", False),
        ("up_cflt", "client-side proxy minor page faults per GB uploaded", "{:.0f}", False),
        ("down_sflt", "server-side minor page faults per GB downloaded", "{:.0f}", False),
        ("up_sflt", "server-side minor page faults per GB uploaded", "{:.0f}", False),
    ]
    head = ["metric (median of %d)" % b.a.reps] + [f"{p}: {paths[p]}" for p in cols]
    ratio_cols = []
    if "A" in cols and "B" in cols:
        ratio_cols.append(("A", "B", "A / B"))
    if "A" in cols and "C" in cols:
        ratio_cols.append(("A", "C", "A / C"))
    for x, y in (("A2", "B"), ("A3", "B"), ("A3", "A2"), ("A2i", "A2"), ("A3i", "A3"),
                 ("A3i", "A2i"), ("Wi", "W"), ("A2i", "Wi"), ("A3i", "Wi"), ("A2s", "B"),
                 ("A3s", "B"), ("A3s", "A3"), ("A2s", "A2"), ("A3f", "B")):
        if x in cols and y in cols and x not in b.pending and y not in b.pending:
            ratio_cols.append((x, y, f"{x} / {y}"))
    head += [r[2] for r in ratio_cols]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric, label, fmt, _ in rows:
        cells = [label]
        vals = {}
        for p in cols:
            v = b.median(metric, p)
            per_stream = metric.startswith("rss_per_stream")  # KiB; the other rss rows MiB
            if v is not None and metric.startswith("rss") and not per_stream:
                v = v / 1024
            vals[p] = v
            bad = b.failures.get((metric, p), [])
            if p in b.pending:
                cells.append("pending")
            elif v is None:
                cells.append(f"failed ({len(bad)} run(s), see below)" if bad else "—")
            else:
                cells.append(fmt.format(v) + (f" ({len(bad)} failed run(s), see below)"
                                              if bad else ""))
        if all(vals[p] is None for p in cols):
            continue
        for x, y, _ in ratio_cols:
            if vals.get(x) is None or not vals.get(y):
                cells.append("—")
            else:
                ratio = vals[x] / vals[y]
                # impaired / clean can be ~0.005: two digits would print 0.00
                cells.append(f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3f}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


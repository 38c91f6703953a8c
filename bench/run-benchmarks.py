#!/usr/bin/python3
"""Measure libcimgproxy against the limits it works within, in one run, back to back.

Usage: run-benchmarks.py --build-dir BUILD [--out DIR] [--runs N] [--smoke]

Generates the benchmark images (bench/mkbench.py), warms the page cache with them, then
runs every scenario RUNS times, round-robin, so that a machine getting slower or faster
part-way affects every scenario alike. Each figure is the median of its runs.

What is measured, and against what:

  sequential   the four 256 MiB layers one after another: the minimal reader (the limit),
               `cat` of the blob files, the C library with 1 MiB reads and with splice(2),
               Python with read_bytes and with os.splice, and `skopeo copy` to dir: plus
               reading the copy, the write-it-to-disk-first path the library replaces
  concurrent   the same four layers all in flight over one proxy: the minimal reader from
               one poll(2) loop (the limit), the C library from four threads and from one
               main loop
  latency      GetManifest + FinishPipe round trips on an open image
  startup      from creating a client to its first reply (Initialize)
  memory       peak RSS while streaming the 1 GiB layer
  extract      `cimgproxy extract` against `skopeo copy` to dir: followed by `tar -x` of
               each layer

Writes results.csv, results.md (the table) and a chart, throughput.svg and .png (gnuplot),
into DIR. This is
a benchmark, not a test: the aims are checked and printed, never turned into a failure. A
failure is a scenario that does not run, or moves the wrong number of bytes.
"""

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GB = 1e9
MIB = 1024 * 1024


class Sample:
    """One run of one scenario."""

    def __init__(self, seconds, cpu_seconds=None, nbytes=0, peak_rss_kib=None, requests=0,
                 proxy_cpu_seconds=None):
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds
        self.bytes = nbytes
        self.peak_rss_kib = peak_rss_kib
        self.requests = requests
        self.proxy_cpu_seconds = proxy_cpu_seconds


class Scenario:
    def __init__(self, key, group, label, run, expected_bytes=None, limit=None):
        self.key = key
        self.group = group
        self.label = label
        self.run = run
        self.expected_bytes = expected_bytes
        self.limit = limit
        self.samples = []

    def median(self, attribute):
        values = [getattr(s, attribute) for s in self.samples]
        if not values or any(v is None for v in values):
            return None
        return statistics.median(values)


def run_timed(argvs, env=None, cwd=None):
    """Runs commands one after another; returns their total wall-clock and CPU time."""
    seconds = cpu = 0.0
    for argv in argvs:
        start = time.monotonic()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds += time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited with {process.returncode}")
        cpu += usage.ru_utime + usage.ru_stime
    return seconds, cpu


def run_json(argv, env=None):
    """Runs a bench program and returns the Sample its line of JSON describes."""
    result = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=False, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} exited with {result.returncode}")
    data = json.loads(result.stdout)
    return Sample(data["seconds"], data["cpu_seconds"], data["bytes"], data["peak_rss_kib"],
                  data["requests"], data.get("proxy_cpu_seconds") or None)


def blob_args(image):
    return [f"{layer['digest']}:{layer['size']}" for layer in image["layers"]]


def image_bytes(image):
    return sum(layer["size"] for layer in image["layers"])


def layout_blob_paths(image):
    layout = image["reference"].split(":")[1]
    return [os.path.join(layout, "blobs", "sha256", layer["digest"].split(":", 1)[1])
            for layer in image["layers"]]


def make_scenarios(args, facts, scratch):
    bench = os.path.join(args.build_dir, "bench", "bench-cimgproxy")
    tool = os.path.join(args.build_dir, "tools", "cimgproxy")
    python = [sys.executable, os.path.join(HERE, "bench-python.py")]
    four = facts["images"]["four"]
    big = facts["images"]["big"]
    four_ref, four_blobs, four_bytes = four["reference"], blob_args(four), image_bytes(four)
    env = dict(os.environ, CIMG_BENCH_REQUESTS=str(args.requests))
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        filter(None, [os.path.join(args.build_dir, "libcimgproxy"),
                      os.environ.get("LD_LIBRARY_PATH")]))
    env["GI_TYPELIB_PATH"] = os.pathsep.join(
        filter(None, [os.path.join(args.build_dir, "introspection"),
                      os.environ.get("GI_TYPELIB_PATH")]))

    def c(mode, reference=four_ref, blobs=four_blobs):
        return lambda: run_json([bench, mode, reference] + blobs, env)

    def py(mode):
        return lambda: run_json(python + [mode, four_ref] + four_blobs, env)

    def cat():
        seconds, cpu = run_timed([["cat"] + layout_blob_paths(four)])
        return Sample(seconds, cpu, four_bytes)

    copy_dir = os.path.join(scratch, "copy")
    rootfs = os.path.join(scratch, "rootfs")

    def skopeo_copy():
        shutil.rmtree(copy_dir, ignore_errors=True)
        copy = ["skopeo", "copy", "--quiet", four_ref, "dir:" + copy_dir]
        copied = [os.path.join(copy_dir, layer["digest"].split(":", 1)[1])
                  for layer in four["layers"]]
        seconds, _ = run_timed([copy, ["cat"] + copied])
        return Sample(seconds, None, four_bytes)

    def skopeo_copy_tar():
        shutil.rmtree(copy_dir, ignore_errors=True)
        shutil.rmtree(rootfs, ignore_errors=True)
        os.makedirs(rootfs)
        commands = [["skopeo", "copy", "--quiet", four_ref, "dir:" + copy_dir]]
        commands += [["tar", "-xzf", os.path.join(copy_dir, layer["digest"].split(":", 1)[1]),
                      "-C", rootfs] for layer in four["layers"]]
        seconds, _ = run_timed(commands)
        return Sample(seconds, None, four_bytes)

    def extract(jobs):
        def run():
            shutil.rmtree(rootfs, ignore_errors=True)
            seconds, _ = run_timed([[tool, "extract", "--quiet", "-j", str(jobs), four_ref,
                                     rootfs]], env)
            return Sample(seconds, None, four_bytes)
        return run

    return [
        Scenario("minimal-read", "sequential", "minimal reader (limit)", c("minimal-read"),
                 four_bytes),
        Scenario("cat", "sequential", "cat of the blob files", cat, four_bytes),
        Scenario("c-read", "sequential", "C, read() 1 MiB", c("read"), four_bytes,
                 "minimal-read"),
        Scenario("c-splice", "sequential", "C, splice()", c("splice"), four_bytes,
                 "minimal-read"),
        Scenario("py-read-bytes", "sequential", "Python, read_bytes() 1 MiB", py("read_bytes"),
                 four_bytes, "minimal-read"),
        Scenario("py-splice", "sequential", "Python, os.splice()", py("splice"), four_bytes,
                 "minimal-read"),
        Scenario("skopeo-copy", "sequential", "skopeo copy to dir: + read", skopeo_copy,
                 four_bytes, "minimal-read"),
        Scenario("minimal-concurrent", "concurrent", "minimal reader, 4 in flight (limit)",
                 c("minimal-concurrent"), four_bytes),
        Scenario("c-threads", "concurrent", "C, 4 threads", c("threads"), four_bytes,
                 "minimal-concurrent"),
        Scenario("c-mainloop", "concurrent", "C, 4 on one main loop", c("mainloop"),
                 four_bytes, "minimal-concurrent"),
        Scenario("minimal-latency", "latency", "minimal reader (limit)", c("minimal-latency")),
        Scenario("c-latency", "latency", "C, get_manifest()", c("latency"), None,
                 "minimal-latency"),
        Scenario("minimal-startup", "startup", "minimal reader (limit)", c("minimal-startup")),
        Scenario("c-startup", "startup", "C, cimg_proxy_client_new()", c("startup"), None,
                 "minimal-startup"),
        Scenario("minimal-memory", "memory", f"minimal reader, {args.big_mib} MiB layer",
                 c("minimal-read", big["reference"], blob_args(big)), image_bytes(big)),
        Scenario("c-memory", "memory", f"C, read() {args.big_mib} MiB layer",
                 c("read", big["reference"], blob_args(big)), image_bytes(big),
                 "minimal-memory"),
        Scenario("skopeo-copy-tar", "extract", "skopeo copy to dir: + tar -xzf (limit)",
                 skopeo_copy_tar, four_bytes),
        Scenario("extract", "extract", "cimgproxy extract", extract(1), four_bytes,
                 "skopeo-copy-tar"),
        Scenario("extract-j4", "extract", "cimgproxy extract -j 4", extract(4), four_bytes,
                 "skopeo-copy-tar"),
    ]


# --- figures ------------------------------------------------------------------------------

def figures(scenario, by_key):
    """The row of the table for a scenario: its headline figure and its ratio to its limit.

    Throughput is in MB/s, higher is better, and its ratio is ours over the limit's. Times
    (latency, startup, extract) are lower-is-better, and their ratio is ours over the
    limit's too, so a ratio above 1 there means slower than the limit."""
    seconds = scenario.median("seconds")
    row = {"key": scenario.key, "group": scenario.group, "scenario": scenario.label,
           "runs": len(scenario.samples)}
    if scenario.group in ("sequential", "concurrent", "memory"):
        row["value"] = scenario.expected_bytes / seconds / 1e6
        row["unit"] = "MB/s"
    elif scenario.group == "latency":
        row["value"] = seconds / scenario.samples[0].requests * 1e6
        row["unit"] = "us/request"
    elif scenario.group == "startup":
        row["value"] = seconds * 1e3
        row["unit"] = "ms"
    else:
        row["value"] = seconds
        row["unit"] = "s"
    cpu = scenario.median("cpu_seconds")
    if cpu is not None and scenario.expected_bytes:
        row["cpu_s_per_gb"] = cpu / (scenario.expected_bytes / GB)
    proxy_cpu = scenario.median("proxy_cpu_seconds")
    if proxy_cpu is not None and scenario.expected_bytes:
        row["proxy_cpu_s_per_gb"] = proxy_cpu / (scenario.expected_bytes / GB)
    peak_rss = scenario.median("peak_rss_kib")
    if peak_rss is not None:
        row["peak_rss_mib"] = peak_rss / 1024
    if scenario.limit:
        limit = figures(by_key[scenario.limit], by_key)
        row["ratio"] = row["value"] / limit["value"]
        if "cpu_s_per_gb" in row and "cpu_s_per_gb" in limit:
            row["cpu_ratio"] = row["cpu_s_per_gb"] / limit["cpu_s_per_gb"]
    return row


def aims(rows):
    """The issue's aims, each as (what, figure, aim, met)."""
    r = {row["key"]: row for row in rows}
    out = [("C sequential read / minimal reader", r["c-read"]["ratio"], ">= 0.95",
            r["c-read"]["ratio"] >= 0.95)]
    if "py-read-bytes" in r:
        out.append(("Python read_bytes / minimal reader", r["py-read-bytes"]["ratio"],
                    ">= 0.85", r["py-read-bytes"]["ratio"] >= 0.85))
    for key in ("c-threads", "c-mainloop"):
        out.append((f"{r[key]['scenario']} / minimal reader, 4 in flight", r[key]["ratio"],
                    ">= 0.95", r[key]["ratio"] >= 0.95))
        ratio = r[key]["value"] / r["c-read"]["value"]
        out.append((f"{r[key]['scenario']} / C sequential read", ratio, ">= 1", ratio >= 1))
    out += [
        ("client CPU per GB, C read / minimal reader", r["c-read"]["cpu_ratio"], "<= 1.2",
         r["c-read"]["cpu_ratio"] <= 1.2),
        ("request latency / minimal reader", r["c-latency"]["ratio"], "<= 1.2",
         r["c-latency"]["ratio"] <= 1.2),
        ("peak RSS streaming the big layer (MiB)", r["c-memory"]["peak_rss_mib"], "< 16",
         r["c-memory"]["peak_rss_mib"] < 16),
        ("cimgproxy extract / skopeo copy + tar (time)", r["extract"]["ratio"], "< 1",
         r["extract"]["ratio"] < 1),
    ]
    return out


def fmt(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def markdown_table(rows):
    lines = ["| group | scenario | median | ratio to limit | client CPU s/GB | CPU ratio "
             "| peak RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append("| {} | {} | {} {} | {} | {} | {} | {} |".format(
            row["group"], row["scenario"], fmt(row["value"], 1 if row["value"] > 10 else 3),
            row["unit"], fmt(row.get("ratio")), fmt(row.get("cpu_s_per_gb")),
            fmt(row.get("cpu_ratio")), fmt(row.get("peak_rss_mib"), 1)))
    return "\n".join(lines) + "\n"


def write_chart(rows, out_dir):
    """throughput.svg and .png: horizontal bars of every throughput figure, the library's in
    blue, the limits and the other paths in grey. The page cache (cat) is so far ahead that
    its bar is cut at the chart's edge, with its figure written on it."""
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        raise RuntimeError("gnuplot is missing: build-aux/install-deps.sh installs it")
    bars = [row for row in rows if row["unit"] == "MB/s"]
    edge = 1.3 * max(row["value"] for row in bars if row["key"] != "cat")
    data = os.path.join(out_dir, "throughput.dat")
    with open(data, "w", encoding="utf-8") as f:
        # gnuplot draws the first line at the bottom; the table's order reads top down.
        for row in reversed(bars):
            colour = 1 if row["key"].startswith(("c-", "py-")) else 2
            label = f"{row['group']}: {row['scenario']}".replace('"', "'")
            cut = row["value"] > edge
            text = f"{row['value']:.0f}" + (" (bar cut)" if cut else "")
            f.write(f"\"{label}\" {min(row['value'], edge):.1f} \"{text}\" {colour} "
                    f"{0.82 * edge if cut else row['value']:.1f}\n")
    script = f"""
set terminal svg size 900,{120 + 28 * len(bars)} dynamic font "sans,11"
set output "{os.path.join(out_dir, 'throughput.svg')}"
set title "libcimgproxy blob throughput, median MB/s (grey: limits and other paths)"
set style fill solid 0.8 border -1
set xrange [0:{edge:.0f}]
set yrange [-0.6:{len(bars) - 0.4}]
set ytics noenhanced nomirror
set xtics nomirror
set grid xtics
set lmargin 44
unset key
set linetype 1 lc rgb "#3465a4"
set linetype 2 lc rgb "#888a85"
plot "{data}" using ($2/2):0:($2/2):(0.35):4:ytic(1) with boxxyerror lc variable, \\
     "" using 5:0:3 with labels left offset 0.5,0
set terminal pngcairo size 900,{120 + 28 * len(bars)} font "sans,10"
set output "{os.path.join(out_dir, 'throughput.png')}"
replot
"""
    subprocess.run([gnuplot], input=script, text=True, check=True)


def write_outputs(rows, out_dir):
    fields = ["key", "group", "scenario", "value", "unit", "ratio", "cpu_s_per_gb",
              "cpu_ratio", "proxy_cpu_s_per_gb", "peak_rss_mib", "runs"]
    with open(os.path.join(out_dir, "results.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v)
                             for k, v in row.items() if k in fields})
    with open(os.path.join(out_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(markdown_table(rows))
    write_chart(rows, out_dir)


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    skopeo = subprocess.run(["skopeo", "--version"], stdout=subprocess.PIPE, text=True,
                            check=False).stdout.strip()
    return f"{os.cpu_count()} x {model}, {skopeo}, Python {sys.version.split()[0]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the meson build directory")
    parser.add_argument("--out", help="where results go (BUILD/bench/results by default)")
    parser.add_argument("--images", help="where the images go (BUILD/bench/images)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each scenario")
    parser.add_argument("--requests", type=int, default=10000,
                        help="round trips per latency run")
    parser.add_argument("--layer-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--no-python", action="store_true",
                        help="leave out the Python scenarios (a build without introspection)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny images and one run: checks that every scenario works")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.requests, args.layer_mib, args.big_mib = 1, 20, 4, 8
        args.images = args.images or os.path.join(args.build_dir, "bench", "smoke-images")
        args.out = args.out or os.path.join(args.build_dir, "bench", "smoke-results")
    args.build_dir = os.path.abspath(args.build_dir)
    args.images = os.path.abspath(args.images or os.path.join(args.build_dir, "bench",
                                                              "images"))
    args.out = os.path.abspath(args.out or os.path.join(args.build_dir, "bench", "results"))
    os.makedirs(args.out, exist_ok=True)

    print(f"Generating the images in {args.images} (once) ...", flush=True)
    subprocess.run([sys.executable, os.path.join(HERE, "mkbench.py"), args.images,
                    "--layer-mib", str(args.layer_mib), "--big-mib", str(args.big_mib)],
                   check=True)
    with open(os.path.join(args.images, "facts.json"), encoding="utf-8") as f:
        facts = json.load(f)
    # Every path reads from the page cache, so none pays for the disk and the first run
    # is like the others.
    for image in facts["images"].values():
        run_timed([["cat"] + layout_blob_paths(image)])

    with tempfile.TemporaryDirectory(prefix="scratch-", dir=args.out) as scratch:
        scenarios = make_scenarios(args, facts, scratch)
        if args.no_python:
            scenarios = [s for s in scenarios if not s.key.startswith("py-")]
        for round_number in range(1, args.runs + 1):
            print(f"Round {round_number} of {args.runs}:", flush=True)
            for scenario in scenarios:
                sample = scenario.run()
                if scenario.expected_bytes is not None and sample.bytes != scenario.expected_bytes:
                    raise SystemExit(f"{scenario.key}: moved {sample.bytes} bytes, "
                                     f"not {scenario.expected_bytes}")
                scenario.samples.append(sample)
                print(f"  {scenario.key:20} {sample.seconds:9.4f} s", flush=True)

    by_key = {s.key: s for s in scenarios}
    rows = [figures(s, by_key) for s in scenarios]
    write_outputs(rows, args.out)

    print()
    print(f"Machine: {machine()}")
    print(f"Median of {args.runs} runs; four layers of {args.layer_mib} MiB, one of "
          f"{args.big_mib} MiB; {args.requests} requests per latency run.")
    print()
    print(markdown_table(rows))
    print("Aims:")
    for what, value, aim, met in aims(rows):
        print(f"  {what:52} {value:8.3f}  aim {aim:8} {'met' if met else 'NOT MET'}")
    print()
    for name in ("results.csv", "results.md", "throughput.svg", "throughput.png"):
        print(f"Wrote {os.path.join(args.out, name)}")


if __name__ == "__main__":
    main()

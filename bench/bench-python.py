#!/usr/bin/python3
"""libcimgproxy from Python, through GObject-Introspection: one measurement per run.

Usage: bench-python.py MODE REFERENCE DIGEST:SIZE...

MODE is read_bytes (Gio.InputStream.read_bytes of 1 MiB until the end) or splice
(os.splice from the blob's pipe to /dev/null, then the verdict). Prints one line of JSON
like bench-cimgproxy does: bytes, seconds, CPU seconds of this process, peak RSS.
"""

import json
import os
import resource
import select
import sys
import time

import gi

gi.require_version("CImgProxy", "1.0")
from gi.repository import CImgProxy  # noqa: E402

BUFFER_SIZE = 1024 * 1024


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_kib():
    # Not ru_maxrss, which survives exec and so reports the parent's size.
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def read_bytes(blob):
    total = 0
    while True:
        chunk = blob.read_bytes(BUFFER_SIZE, None)
        size = chunk.get_size()
        if size == 0:
            return total
        total += size


def splice(blob, null_fd):
    fd = blob.get_fd()
    left = blob.get_size()
    total = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while left > 0:
        try:
            n = os.splice(fd, null_fd, left)
        except BlockingIOError:
            # The pipe is non-blocking, as the pollable stream needs it to be.
            poller.poll()
            continue
        blob.consumed(n)
        left -= n
        total += n
    # The verdict, as for any stream: the read that returns end-of-stream.
    if blob.read_bytes(1, None).get_size() != 0:
        raise RuntimeError("bytes past the end of " + blob.get_digest())
    return total


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("read_bytes", "splice"):
        sys.exit(__doc__.strip())
    mode, reference = sys.argv[1], sys.argv[2]
    blobs = [arg.rsplit(":", 1) for arg in sys.argv[3:]]

    client = CImgProxy.Client.new(None)
    image = client.open_image(reference, None)
    null_fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)

    rss_before = peak_rss_kib()
    cpu_start = cpu_seconds()
    start = time.monotonic()
    total = 0
    for digest, size in blobs:
        blob = image.open_blob(digest, int(size), None)
        total += read_bytes(blob) if mode == "read_bytes" else splice(blob, null_fd)
        blob.close(None)
    seconds = time.monotonic() - start
    cpu = cpu_seconds() - cpu_start

    os.close(null_fd)
    client.close(None)
    print(json.dumps({
        "mode": mode,
        "bytes": total,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "requests": 0,
        "peak_rss_before_kib": rss_before,
        "peak_rss_kib": peak_rss_kib(),
    }))


if __name__ == "__main__":
    main()

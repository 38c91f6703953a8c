#!/usr/bin/python3
"""Generate the OCI image layout that libcimgproxy's benchmarks read.

Usage: mkbench.py OUTDIR [--layer-mib N] [--big-mib N]

OUTDIR/layout is one OCI image layout with two tags:

  four   four gzip layers, each a tar of one file of N MiB (--layer-mib, 256 by default)
  big    one gzip layer holding a file of N MiB (--big-mib, 1024 by default)

The data is pseudo-random, so the gzip layers are as large as what they hold: the
benchmarks measure moving bytes, not compressing them. OUTDIR/facts.json records every
blob's digest and size for the benchmark programs, which must not need the library they
measure to find out what to read.

Generating 2 GiB takes about a minute, so an OUTDIR whose facts.json was written for the
same sizes is left as it is.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tarfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import mkoci  # noqa: E402  (shares the OCI vocabulary with the test images)

CHUNK = 4 * mkoci.MIB
GENERATOR_VERSION = 1


class HashingWriter:
    """A file being written whose sha256 and size are known once it is closed."""

    def __init__(self, path):
        self.file = open(path, "wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.file.write(data)
        self.sha.update(data)
        self.size += len(data)

    def close(self):
        self.file.close()
        return "sha256:" + self.sha.hexdigest(), self.size


def write_layer(layout, label, file_size):
    """Streams a gzip tar of one file of file_size random bytes into the layout's blob
    directory, without ever holding it in memory, and returns its facts."""
    tmp_path = os.path.join(layout.blob_dir, f".{label}.partial")
    out = HashingWriter(tmp_path)
    # wbits 31: a gzip container. Level 1, because random data does not compress anyway
    # and level 9 would take minutes for the same output.
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    tar_sha = hashlib.sha256()

    def emit(data):
        tar_sha.update(data)
        out.write(compressor.compress(data))

    info = mkoci.tar_header(f"data/{label}.bin", tarfile.REGTYPE, 0o644)
    info.size = file_size
    emit(info.tobuf(format=tarfile.USTAR_FORMAT))
    rng = random.Random("mkbench:" + label)
    left = file_size
    while left > 0:
        n = min(CHUNK, left)
        emit(rng.randbytes(n))
        left -= n
    # Pad the file to a whole record, then the two empty records that end a tar.
    emit(b"\0" * ((-file_size) % tarfile.BLOCKSIZE) + b"\0" * (2 * tarfile.BLOCKSIZE))
    out.write(compressor.flush())
    digest, size = out.close()
    os.rename(tmp_path, layout.blob_path(digest))
    return {
        "digest": digest,
        "size": size,
        "media_type": mkoci.LAYER_TYPE,
        "diff_id": "sha256:" + tar_sha.hexdigest(),
    }


def add_image(layout, name, layer_facts):
    """Stores the config and manifest of an image made of already stored layers."""
    config = {
        "architecture": mkoci.host_arch(),
        "os": "linux",
        "created": mkoci.CREATED,
        "config": {"Env": mkoci.ENV, "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [f["diff_id"] for f in layer_facts]},
        "history": [{"created": mkoci.CREATED, "created_by": "mkbench.py"}
                    for _ in layer_facts],
    }
    config_desc = layout.put_blob(mkoci.canonical_json(config), mkoci.CONFIG_TYPE)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mkoci.MANIFEST_TYPE,
        "config": config_desc,
        "layers": [{"mediaType": f["media_type"], "digest": f["digest"], "size": f["size"]}
                   for f in layer_facts],
    }
    manifest_desc = layout.put_blob(mkoci.canonical_json(manifest), mkoci.MANIFEST_TYPE)
    layout.tag(name, manifest_desc)
    return {
        "reference": f"oci:{layout.root}:{name}",
        "manifest_digest": manifest_desc["digest"],
        "layers": layer_facts,
    }


def main():
    parser = argparse.ArgumentParser(description="Generate the benchmark image layout.")
    parser.add_argument("outdir", help="directory to create, or to reuse if up to date")
    parser.add_argument("--layer-mib", type=int, default=256,
                        help="size of each of the four layers of the 'four' image, in MiB")
    parser.add_argument("--big-mib", type=int, default=1024,
                        help="size of the one layer of the 'big' image, in MiB")
    args = parser.parse_args()

    wanted = {"generator": GENERATOR_VERSION, "layer_mib": args.layer_mib,
              "big_mib": args.big_mib}
    facts_path = os.path.join(args.outdir, "facts.json")
    try:
        with open(facts_path, encoding="utf-8") as f:
            if json.load(f).get("parameters") == wanted:
                return
    except (OSError, ValueError):
        pass

    layout_dir = os.path.join(args.outdir, "layout")
    shutil.rmtree(layout_dir, ignore_errors=True)
    os.makedirs(args.outdir, exist_ok=True)
    layout = mkoci.OciLayout(layout_dir)
    four = [write_layer(layout, f"four-{i}", args.layer_mib * mkoci.MIB) for i in range(4)]
    big = [write_layer(layout, "big", args.big_mib * mkoci.MIB)]
    images = {"four": add_image(layout, "four", four), "big": add_image(layout, "big", big)}
    layout.finish()

    # Written last: its presence says the layout is complete.
    with open(facts_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"parameters": wanted, "images": images}, f, indent=2, sort_keys=True)
        f.write("\n")
    os.rename(facts_path + ".tmp", facts_path)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Generate the OCI image layouts that libcimgproxy's tests read.

The C tests need real images on disk that skopeo can also read, so they can
check the library against a known-good implementation.  Checking binary
images into git would hide what they contain, so this script builds them from
scratch, deterministically: running it twice gives byte-identical output.

Usage: mkoci.py OUTDIR [--stamp FILE]

OUTDIR (created or replaced) receives:

  multi/          tag "latest": a host-arch image with three gzip layers
                  (small files, 3 MiB and 1 MiB of incompressible data);
                  tag "index": an image index with a host-arch manifest and
                  one for another arch, each with its own one-file layer.
  corrupt/        a copy of multi/ whose layer 1 blob has one byte flipped,
                  so its content no longer matches its digest.
  wide/           tag "latest": four layers of 2 MiB of incompressible data
                  each, for tests that stream several layers at once.
  sample/         tag "latest": the small two-layer image used by the README
                  quick start, with a symlink, a hardlink, a whiteout and an opaque dir.
  expected.json   digests, sizes and diff_ids the C tests compare against.

--stamp FILE touches FILE once everything is written, so that a meson
custom_target has a single output file to track.
"""

import argparse
import gzip
import hashlib
import io
import struct
import subprocess
import json
import os
import platform
import random
import shutil
import tarfile

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD_LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+zstd"
PLAIN_LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"

# Fixed timestamps: anything taken from the clock would change the digests.
TAR_MTIME = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"

ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
MIB = 1024 * 1024

# platform.machine() spellings -> GOARCH names, which OCI platforms use.
ARCH_NAMES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
}

# Only these names may already be in OUTDIR; anything else means the user
# pointed us at a directory we did not make, and we refuse to delete it.
OUTPUT_NAMES = {"multi", "corrupt", "wide", "tall", "layers", "evil", "sample", "expected.json"}


def host_arch():
    machine = platform.machine().lower()
    return ARCH_NAMES.get(machine, machine)


def other_arch(host):
    return "arm64" if host == "amd64" else "amd64"


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    """Serialise obj once; the returned bytes are what gets hashed and stored."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def prng_bytes(label, size):
    # Seeding per file keeps each file's content stable even if the set or
    # order of generated files changes.
    # randbytes() cannot make more than 256 MiB at once; larger sizes come in chunks, each
    # seeded on its own (sizes up to one chunk come out as they always did).
    chunk = 64 * MIB
    if size <= chunk:
        return random.Random("mkoci:" + label).randbytes(size)
    return b"".join(random.Random(f"mkoci:{label}:{i}").randbytes(min(chunk, size - offset))
                    for i, offset in enumerate(range(0, size, chunk)))


# --- tar layers -------------------------------------------------------------

def tar_header(name, kind, mode):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = TAR_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def dir_entry(name):
    return tar_header(name, tarfile.DIRTYPE, 0o755), None


def file_entry(name, data, mode=0o644):
    info = tar_header(name, tarfile.REGTYPE, mode)
    info.size = len(data)
    return info, data


def symlink_entry(name, target):
    info = tar_header(name, tarfile.SYMTYPE, 0o777)
    info.linkname = target
    return info, None


def whiteout_entry(name):
    """An OCI whiteout marker: an empty regular file with a .wh. name."""
    return file_entry(name, b"")


def build_tar(entries):
    buf = io.BytesIO()
    # ustar keeps headers free of pax records whose content could vary.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


# --- the layout on disk -----------------------------------------------------

class OciLayout:
    """An OCI image layout directory being filled with blobs and tags."""

    def __init__(self, root):
        self.root = root
        self.refs = []
        self.blob_dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blob_dir)
        with open(os.path.join(root, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))

    def put_blob(self, data, media_type):
        """Store data under its digest and return a descriptor for it."""
        digest = sha256_digest(data)
        with open(self.blob_path(digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def blob_path(self, digest):
        return os.path.join(self.blob_dir, digest.split(":", 1)[1])

    def tag(self, name, descriptor):
        self.refs.append(dict(descriptor, annotations={REF_NAME: name}))

    def finish(self):
        index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": self.refs}
        with open(os.path.join(self.root, "index.json"), "wb") as f:
            f.write(canonical_json(index))


def gzip_layer(level):
    # mtime=0 keeps the gzip header, and so the layer digest, stable.
    return lambda tar: (gzip.compress(tar, compresslevel=level, mtime=0), LAYER_TYPE)


def add_image(layout, arch, layers, cmd, level=9, compress=None, diff_ids=None, labels=None):
    """Store layers, config and manifest; return the manifest descriptor and
    the facts expected.json records about the image.

    layers is a list of (tar entries, history comment) pairs. compress turns a
    tar into (blob, media type), gzip by default; diff_ids, if given, replaces
    the real ones in the config (to make a lying image).
    """
    compress = compress or gzip_layer(level)
    layer_facts = []
    history = []
    for entries, comment in layers:
        tar = build_tar(entries)
        blob, media_type = compress(tar)
        desc = layout.put_blob(blob, media_type)
        layer_facts.append({
            "digest": desc["digest"],
            "size": desc["size"],
            "media_type": media_type,
            "diff_id": sha256_digest(tar),
        })
        history.append({"created": CREATED, "created_by": "mkoci.py: " + comment})

    config = {
        "architecture": arch,
        "os": "linux",
        "created": CREATED,
        "config": {"Env": ENV, "Cmd": cmd, **({"Labels": labels} if labels else {})},
        "rootfs": {"type": "layers",
                   "diff_ids": diff_ids or [f["diff_id"] for f in layer_facts]},
        "history": history,
    }
    config_desc = layout.put_blob(canonical_json(config), CONFIG_TYPE)

    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config_desc,
        "layers": [
            {"mediaType": f["media_type"], "digest": f["digest"], "size": f["size"]}
            for f in layer_facts
        ],
    }
    manifest_desc = layout.put_blob(canonical_json(manifest), MANIFEST_TYPE)
    facts = {
        "manifest_digest": manifest_desc["digest"],
        "config_digest": config_desc["digest"],
        "layers": layer_facts,
    }
    return manifest_desc, facts


# --- the images -------------------------------------------------------------

def multi_layers():
    layer0 = [
        dir_entry("etc"),
        file_entry("etc/hello.txt", b"hello from layer 0\n"),
        file_entry("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
        symlink_entry("usr/bin/tool-link", "tool"),
    ]
    # Random data does not compress, so this gzip blob stays about 3 MiB:
    # large enough for tests that stream or resume a blob in chunks.
    layer1 = [file_entry("data/random-a.bin", prng_bytes("random-a", 3 * MIB))]
    layer2 = [
        file_entry("data/random-b.bin", prng_bytes("random-b", MIB)),
        file_entry("etc/hello.txt", b"hello from layer 2\n"),
    ]
    return [
        (layer0, "add etc/hello.txt and usr/bin/tool"),
        (layer1, "add data/random-a.bin"),
        (layer2, "add data/random-b.bin, replace etc/hello.txt"),
    ]


def add_platform_index(layout, host, other):
    """Store an image index with one small manifest per arch and return its
    descriptor with the facts about the host-arch entry."""
    entries = []
    host_facts = None
    for arch in (host, other):
        layer = [file_entry("arch.txt", arch.encode())]
        desc, facts = add_image(layout, arch, [(layer, "add arch.txt")], ["/bin/sh"])
        entries.append(dict(desc, platform={"architecture": arch, "os": "linux"}))
        if arch == host:
            host_facts = facts
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": entries}
    index_desc = layout.put_blob(canonical_json(index), INDEX_TYPE)
    facts = {
        "index_digest": index_desc["digest"],
        "host_manifest_digest": host_facts["manifest_digest"],
        "host_config_digest": host_facts["config_digest"],
        "layers": host_facts["layers"],
    }
    return index_desc, facts


def make_multi(root, host):
    layout = OciLayout(root)
    latest_desc, latest_facts = add_image(layout, host, multi_layers(), ["/bin/sh"])
    layout.tag("latest", latest_desc)
    index_desc, index_facts = add_platform_index(layout, host, other_arch(host))
    layout.tag("index", index_desc)
    layout.finish()
    return latest_facts, index_facts


def make_corrupt(multi_root, root, multi_facts, layer_index):
    """Copy multi/ and damage one layer blob in place, keeping its name and
    size, so only digest verification can notice."""
    shutil.copytree(multi_root, root)
    digest = multi_facts["layers"][layer_index]["digest"]
    path = os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])
    with open(path, "r+b") as f:
        middle = os.fstat(f.fileno()).st_size // 2
        f.seek(middle)
        byte = f.read(1)[0]
        f.seek(middle)
        f.write(bytes([byte ^ 0xFF]))
    return dict(multi_facts, corrupt_layer_index=layer_index)


def sample_layers():
    run_sh = b'#!/bin/sh\necho "hello from the sample app"\n'
    layer0 = [
        file_entry("app/README.txt", b"A tiny sample image for libcimgproxy.\n"),
        file_entry("app/bin/run.sh", run_sh, 0o755),
        hardlink_entry("app/bin/start.sh", "app/bin/run.sh", 0o755),
        symlink_entry("app/current", "bin"),
        file_entry("app/old.txt", b"this file is deleted by layer 1\n"),
        dir_entry("app/cache"),
        file_entry("app/cache/a.tmp", b"cached a\n"),
    ]
    layer1 = [
        file_entry("app/NEWS.txt", b"Layer 1 added this file.\n"),
        whiteout_entry("app/.wh.old.txt"),
        # The opaque marker hides only what lower layers put in app/cache/;
        # b.tmp from this same layer stays visible.
        whiteout_entry("app/cache/.wh..wh..opq"),
        file_entry("app/cache/b.tmp", b"cached b\n"),
    ]
    return [
        (layer0, "add app/"),
        (layer1, "add app/NEWS.txt, delete app/old.txt, replace app/cache/"),
    ]


def make_wide(root, host):
    # Large enough that a pipe (64 KiB) fills many times over, so concurrent readers really
    # interleave; small enough to keep the suite fast.
    layers = [([file_entry(f"data/wide-{i}.bin", prng_bytes(f"wide-{i}", 2 * MIB))],
               f"add data/wide-{i}.bin") for i in range(4)]
    layout = OciLayout(root)
    desc, facts = add_image(layout, host, layers, ["/bin/true"])
    layout.tag("latest", desc)
    layout.finish()
    return facts


def make_tall(root, host):
    # Metadata larger than a pipe holds (64 KiB): a manifest of 600 layers and a config with
    # 256 KiB of labels, so skopeo's writer blocks until the client reads.
    layers = [([file_entry(f"tall/{i}", f"{i}\n".encode())], f"add tall/{i}")
              for i in range(600)]
    labels = {f"org.example.label-{i}": prng_bytes(f"label-{i}", 96).hex() for i in range(1024)}
    layout = OciLayout(root)
    desc, facts = add_image(layout, host, layers, ["/bin/true"], labels=labels)
    layout.tag("latest", desc)
    layout.finish()
    return facts


def zstd_chunked(tar):
    """tar as zstd:chunked lays it out: several frames, and skippable frames between them
    (where the real format keeps its table of contents). Made with the zstd tool."""
    def frame(data):
        return subprocess.run(["zstd", "-q", "-c", "--no-check", "-3"], input=data,
                              stdout=subprocess.PIPE, check=True).stdout
    half = len(tar) // 2
    skippable = struct.pack("<II", 0x184D2A50, 8) + b"tocdata!"
    return frame(tar[:half]) + skippable + frame(tar[half:]) + skippable, ZSTD_LAYER_TYPE


def make_layer_kinds(root, host):
    """layers/: the same files as gzip, zstd (multi-frame, with skippable frames) and plain
    tar layers, each kind under its own tag; and "lying", whose config has a wrong
    diff_id."""
    files = [([file_entry("data/kinds.bin", prng_bytes("kinds", 300 * 1024)),
               file_entry("etc/kind.txt", b"the same in every kind\n")], "add data/kinds.bin")]
    layout = OciLayout(root)
    facts = {}
    for tag, compress in (("gzip", gzip_layer(9)), ("zstd", zstd_chunked),
                          ("plain", lambda tar: (tar, PLAIN_LAYER_TYPE))):
        desc, facts[f"layers:{tag}"] = add_image(layout, host, files, ["/bin/true"],
                                                 compress=compress)
        layout.tag(tag, desc)
    desc, facts["layers:lying"] = add_image(layout, host, files, ["/bin/false"],
                                            diff_ids=[sha256_digest(b"something else")])
    layout.tag("lying", desc)
    layout.finish()
    return facts


def hardlink_entry(name, target, mode=0o644):
    # tar writes a hardlink with its target's mode; extractors differ on which one wins.
    info = tar_header(name, tarfile.LNKTYPE, mode)
    info.linkname = target
    return info, None


# Where the escaping layers of evil/ aim when a path cannot be relative to the target.
ESCAPE_PATH = "/tmp/cimgproxy-escape-test.txt"


def make_evil(root, host):
    """evil/: layers that try to write outside the directory they are unpacked into, one way
    per tag. An extractor must refuse every one of them."""
    tries = {
        "dotdot": [file_entry("../escaped.txt", b"escaped\n")],
        "absolute": [file_entry(ESCAPE_PATH, b"escaped\n")],
        "symlink": [symlink_entry("link", "/tmp"),
                    file_entry("link/cimgproxy-escape-test.txt", b"escaped\n")],
        "hardlink": [hardlink_entry("passwd", "../../../../../etc/passwd")],
    }
    layout = OciLayout(root)
    facts = {}
    for tag, entries in tries.items():
        desc, facts[f"evil:{tag}"] = add_image(layout, host, [(entries, f"escape by {tag}")],
                                               ["/bin/true"])
        layout.tag(tag, desc)
    layout.finish()
    return facts


def make_sample(root, host):
    layout = OciLayout(root)
    desc, facts = add_image(layout, host, sample_layers(), ["/app/bin/run.sh"])
    layout.tag("latest", desc)
    layout.finish()
    return facts


def make_extra(outdir, big_mib):
    """The large images the registry tests push: many/ with 60 small layers, and big/ with
    one layer of big_mib MiB of incompressible data. They take time and disk, so they are
    made on request (--extra), not with the others."""
    host = host_arch()
    facts = {}
    many = [([file_entry(f"layer-{i:02d}.txt", f"layer {i}\n".encode())], f"add layer-{i:02d}")
            for i in range(60)]
    layout = OciLayout(os.path.join(outdir, "many"))
    desc, facts["many:latest"] = add_image(layout, host, many, ["/bin/true"])
    layout.tag("latest", desc)
    layout.finish()

    big = [([file_entry("data/big.bin", prng_bytes("big", big_mib * MIB))], "add data/big.bin")]
    layout = OciLayout(os.path.join(outdir, "big"))
    # Level 1: random data does not compress anyway, and level 9 would take minutes.
    desc, facts["big:latest"] = add_image(layout, host, big, ["/bin/true"], level=1)
    layout.tag("latest", desc)
    layout.finish()

    with open(os.path.join(outdir, "extra.json"), "w", encoding="utf-8") as f:
        json.dump({"host_arch": host, "images": facts}, f, indent=2, sort_keys=True)
        f.write("\n")


# --- driver -----------------------------------------------------------------

def reset_outdir(outdir):
    if os.path.isdir(outdir):
        unknown = set(os.listdir(outdir)) - OUTPUT_NAMES
        if unknown:
            raise SystemExit(f"mkoci.py: refusing to replace {outdir}: "
                             f"it holds files this script did not make: "
                             f"{', '.join(sorted(unknown))}")
        shutil.rmtree(outdir)
    os.makedirs(outdir)


def touch(path):
    with open(path, "a"):
        os.utime(path, None)


def main():
    parser = argparse.ArgumentParser(description="Generate OCI test images.")
    parser.add_argument("outdir", help="directory to create or replace")
    parser.add_argument("--stamp", help="file to touch once the images are written")
    parser.add_argument("--extra", action="store_true",
                        help="make only the large many/ and big/ images, into OUTDIR")
    parser.add_argument("--big-mib", type=int, default=512,
                        help="size of the big/ image's layer in MiB (with --extra)")
    args = parser.parse_args()

    if args.extra:
        for name in ("many", "big"):
            shutil.rmtree(os.path.join(args.outdir, name), ignore_errors=True)
        os.makedirs(args.outdir, exist_ok=True)
        make_extra(args.outdir, args.big_mib)
        return

    reset_outdir(args.outdir)
    host = host_arch()
    multi_root = os.path.join(args.outdir, "multi")
    multi_facts, index_facts = make_multi(multi_root, host)
    corrupt_facts = make_corrupt(multi_root, os.path.join(args.outdir, "corrupt"),
                                 multi_facts, 1)
    wide_facts = make_wide(os.path.join(args.outdir, "wide"), host)
    tall_facts = make_tall(os.path.join(args.outdir, "tall"), host)
    kinds_facts = make_layer_kinds(os.path.join(args.outdir, "layers"), host)
    evil_facts = make_evil(os.path.join(args.outdir, "evil"), host)
    sample_facts = make_sample(os.path.join(args.outdir, "sample"), host)

    expected = {
        "host_arch": host,
        "images": {
            "multi:latest": multi_facts,
            "multi:index": index_facts,
            "corrupt:latest": corrupt_facts,
            "wide:latest": wide_facts,
            "tall:latest": tall_facts,
            **kinds_facts,
            **evil_facts,
            "sample:latest": sample_facts,
        },
    }
    with open(os.path.join(args.outdir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")

    if args.stamp:
        touch(args.stamp)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: LGPL-2.1-or-later
"""The cimgproxy command, run as a user runs it, compared with what skopeo copy to dir:
plus a reference tar extraction gives."""

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

IMAGES = os.environ["CIMG_TEST_IMAGES"]
TOOL = os.environ["CIMG_TOOL"]
with open(os.path.join(IMAGES, "expected.json"), encoding="utf-8") as f:
    EXPECTED = json.load(f)
ESCAPE_PATH = "/tmp/cimgproxy-escape-test.txt"


def oci(layout, tag="latest"):
    return f"oci:{IMAGES}/{layout}:{tag}"


def cimgproxy(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True)


def snapshot(root):
    """Every path under root with its type, mode and content or link target."""
    tree = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            relative = os.path.relpath(path, root)
            if stat.S_ISLNK(info.st_mode):
                tree[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                tree[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                tree[relative] = ("file", stat.S_IMODE(info.st_mode), digest)
    return tree


def reference_extract(reference, root, tmp_path):
    """skopeo copy to dir:, then each layer with Python's tarfile and OCI whiteouts."""
    copy = tmp_path / "copy"
    subprocess.run(["skopeo", "copy", "--quiet", reference, f"dir:{copy}"], check=True)
    with open(copy / "manifest.json", encoding="utf-8") as f:
        manifest = json.load(f)
    os.makedirs(root)
    for layer in manifest["layers"]:
        blob = (copy / layer["digest"].split(":")[1]).read_bytes()
        if layer["mediaType"].endswith("gzip"):
            blob = gzip.decompress(blob)
        elif layer["mediaType"].endswith("zstd"):
            blob = subprocess.run(["zstd", "-d", "-c"], input=blob, stdout=subprocess.PIPE,
                                  check=True).stdout
        tar = tarfile.open(fileobj=io.BytesIO(blob))
        members = tar.getmembers()
        written = {m.name.rstrip("/") for m in members
                   if not os.path.basename(m.name).startswith(".wh.")}
        tar.extractall(root, members=[m for m in members
                                      if not os.path.basename(m.name).startswith(".wh.")])
        for member in members:
            base = os.path.basename(member.name)
            parent = os.path.dirname(member.name)
            if base == ".wh..wh..opq":
                for name in os.listdir(os.path.join(root, parent)):
                    if os.path.join(parent, name) not in written:
                        remove(os.path.join(root, parent, name))
            elif base.startswith(".wh."):
                target = os.path.join(parent, base[len(".wh."):])
                if target not in written:
                    remove(os.path.join(root, target))


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        for name in os.listdir(path):
            remove(os.path.join(path, name))
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)


@pytest.mark.parametrize("layout,tag", [("sample", "latest"), ("multi", "latest"),
                                        ("layers", "zstd"), ("layers", "plain")])
def test_extract_matches_the_reference(layout, tag, tmp_path):
    result = cimgproxy("extract", oci(layout, tag), str(tmp_path / "ours"))
    assert result.returncode == 0, result.stderr
    reference_extract(oci(layout, tag), str(tmp_path / "reference"), tmp_path)
    assert snapshot(tmp_path / "ours") == snapshot(tmp_path / "reference")


def test_extract_applies_whiteouts(tmp_path):
    assert cimgproxy("extract", oci("sample"), str(tmp_path)).returncode == 0
    tree = snapshot(tmp_path)
    assert "app/old.txt" not in tree
    assert "app/cache/a.tmp" not in tree
    assert "app/cache/b.tmp" in tree
    assert tree["app/current"] == ("link", "bin")
    assert tree["app/bin/run.sh"][1] == 0o755
    # The hardlink is one file with two names, as in the layer.
    assert os.stat(tmp_path / "app/bin/start.sh").st_ino == os.stat(
        tmp_path / "app/bin/run.sh").st_ino


@pytest.mark.parametrize("tag", ["dotdot", "absolute", "symlink", "hardlink"])
def test_escaping_layers_are_refused(tag, tmp_path):
    target = tmp_path / "a" / "b" / "root"
    if os.path.lexists(ESCAPE_PATH):
        os.unlink(ESCAPE_PATH)
    result = cimgproxy("extract", oci("evil", tag), str(target))
    assert result.returncode == 1
    assert "Refusing entry" in result.stderr
    assert not os.path.lexists(ESCAPE_PATH)
    outside = {p for p in snapshot(tmp_path) if not p.startswith("a/b/root")}
    assert outside == {"a", "a/b"}


def test_exit_codes(tmp_path):
    assert cimgproxy("extract", oci("layers", "lying"), str(tmp_path / "x")).returncode == 5
    assert cimgproxy("inspect", oci("multi", "nope")).returncode == 3
    assert cimgproxy("inspect").returncode == 2
    assert cimgproxy("frobnicate", oci("multi")).returncode == 2
    assert cimgproxy("inspect", "nosuchtransport:x").returncode == 2


def test_output_is_line_oriented_off_a_terminal(tmp_path):
    result = cimgproxy("extract", oci("multi"), str(tmp_path / "x"))
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("layer ") for line in lines)
    assert "\r" not in result.stderr
    assert cimgproxy("--quiet", "extract", oci("multi"), str(tmp_path / "y")).stderr == ""


def test_inspect_manifest_config():
    expected = EXPECTED["images"]["multi:latest"]
    info = json.loads(cimgproxy("inspect", "--json", oci("multi")).stdout)
    assert info["digest"] == expected["manifest_digest"]
    assert [layer["digest"] for layer in info["layers"]] == [
        layer["digest"] for layer in expected["layers"]]
    assert info["architecture"] == EXPECTED["host_arch"]
    assert "Layers:       3" in cimgproxy("inspect", oci("multi")).stdout
    manifest = json.loads(cimgproxy("manifest", oci("multi")).stdout)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config = json.loads(cimgproxy("config", oci("multi")).stdout)
    assert config["rootfs"]["diff_ids"] == [layer["diff_id"] for layer in expected["layers"]]


def test_blob(tmp_path):
    layer = EXPECTED["images"]["multi:latest"]["layers"][1]
    out = tmp_path / "blob"
    assert cimgproxy("blob", oci("multi"), layer["digest"], "-o", str(out)).returncode == 0
    assert "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest() == layer["digest"]

    corrupt = EXPECTED["images"]["corrupt:latest"]
    bad = corrupt["layers"][corrupt["corrupt_layer_index"]]
    result = cimgproxy("blob", oci("corrupt"), bad["digest"], "-o", str(tmp_path / "bad"))
    assert result.returncode == 5
    assert bad["digest"] in result.stderr
    assert not any(p.name.startswith("bad") for p in tmp_path.iterdir())


@pytest.mark.parametrize("layout", ["sample", "multi", "wide"])
def test_parallel_extraction_gives_the_same_tree(layout, tmp_path):
    for jobs in ("1", "4"):
        result = cimgproxy("-j", jobs, "extract", oci(layout), str(tmp_path / jobs))
        assert result.returncode == 0, result.stderr
    assert snapshot(tmp_path / "1") == snapshot(tmp_path / "4")
    assert cimgproxy("-j", "3", "extract", oci("layers", "lying"),
                     str(tmp_path / "lying")).returncode == 5
    assert cimgproxy("-j", "0", "extract", oci(layout), str(tmp_path / "0")).returncode == 2


def test_progress_on_a_terminal(tmp_path):
    # script(1) gives the command a terminal; the progress line is redrawn in place there.
    command = f"{TOOL} -j 2 extract {oci('wide')} {tmp_path / 'x'}"
    result = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                            env=dict(os.environ, TERM="xterm"))
    assert result.returncode == 0, result.stdout
    assert b"\r\x1b[K" in result.stdout
    assert result.stdout.count(b"bytes unpacked") == 4

# SPDX-License-Identifier: LGPL-2.1-or-later
"""The asynchronous side of CImgProxy-1.0 from Python: callbacks on a GLib main loop."""

import hashlib
import json
import os

import gi
import pytest

gi.require_version("CImgProxy", "1.0")
gi.require_version("Gio", "2.0")
from gi.repository import CImgProxy, Gio, GLib  # noqa: E402

IMAGES = os.environ["CIMG_TEST_IMAGES"]
with open(os.path.join(IMAGES, "expected.json"), encoding="utf-8") as f:
    EXPECTED = json.load(f)


def oci(layout, tag="latest"):
    return f"oci:{IMAGES}/{layout}:{tag}"


def run(start):
    """Calls start(callback) and runs a main loop until the callback got its result."""
    loop = GLib.MainLoop()
    got = []

    def callback(source, result, *args):
        got.append(result)
        loop.quit()

    start(callback)
    loop.run()
    return got[0]


@pytest.fixture
def client():
    result = run(lambda cb: CImgProxy.Client.new_async(None, cb))
    client = CImgProxy.Client.new_finish(result)
    yield client
    client.close_finish(run(lambda cb: client.close_async(None, cb)))


def test_init_async_with_properties():
    client = CImgProxy.Client(idle_timeout=30, tls_verify=False)
    assert client.init_finish(run(lambda cb: client.init_async(GLib.PRIORITY_DEFAULT, None, cb)))
    assert client.get_protocol_version() == "0.2.3"
    assert client.props.idle_timeout == 30


def test_open_and_read_metadata(client):
    expected = EXPECTED["images"]["wide:latest"]
    image = client.open_image_finish(run(lambda cb: client.open_image_async(oci("wide"), None, cb)))
    manifest, digest = image.get_manifest_finish(run(lambda cb: image.get_manifest_async(None, cb)))
    assert digest == expected["manifest_digest"]
    assert len(json.loads(manifest.get_data())["layers"]) == 4
    config = image.get_config_finish(run(lambda cb: image.get_config_async(None, cb)))
    assert json.loads(config.get_data())["rootfs"]["diff_ids"] == [
        layer["diff_id"] for layer in expected["layers"]
    ]
    layers = image.get_layer_info_finish(run(lambda cb: image.get_layer_info_async(None, cb)))
    assert [layer.get_digest() for layer in layers] == [l["digest"] for l in expected["layers"]]
    assert image.close_finish(run(lambda cb: image.close_async(None, cb)))


def test_four_layers_at_once_on_one_loop(client):
    image = client.open_image(oci("wide"), None)
    loop = GLib.MainLoop()
    pending = set()
    digests = {}

    def read_more(blob, sha256, layer):
        blob.read_bytes_async(1024 * 1024, GLib.PRIORITY_DEFAULT, None, on_bytes, (sha256, layer))

    def on_bytes(blob, result, data):
        sha256, layer = data
        chunk = blob.read_bytes_finish(result).get_data()
        if chunk:
            sha256.update(chunk)
            read_more(blob, sha256, layer)
            return
        digests[layer.get_digest()] = "sha256:" + sha256.hexdigest()
        pending.discard(layer.get_digest())
        if not pending:
            loop.quit()

    for layer in image.get_layer_info(None):
        blob = image.open_blob_finish(
            run(lambda cb: image.open_blob_async(layer.get_digest(), layer.get_size(), None, cb)))
        pending.add(layer.get_digest())
        read_more(blob, hashlib.sha256(), layer)
    loop.run()
    assert digests == {d: d for d in digests}
    assert len(digests) == 4


def test_async_verification_failure(client):
    index = EXPECTED["images"]["corrupt:latest"]["corrupt_layer_index"]
    layer = EXPECTED["images"]["corrupt:latest"]["layers"][index]
    image = client.open_image(oci("corrupt"), None)
    blob = image.open_blob(layer["digest"], layer["size"], None)
    with pytest.raises(GLib.Error) as raised:
        while blob.read_bytes_finish(
                run(lambda cb: blob.read_bytes_async(1 << 20, GLib.PRIORITY_DEFAULT, None, cb))
        ).get_size():
            pass
    assert raised.value.matches(CImgProxy.error_quark(), CImgProxy.Error.VERIFICATION_FAILED)


def test_cancelled_open(client):
    cancellable = Gio.Cancellable()
    cancellable.cancel()
    with pytest.raises(GLib.Error) as raised:
        client.open_image_finish(
            run(lambda cb: client.open_image_async(oci("multi"), cancellable, cb)))
    assert raised.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert client.open_image(oci("multi"), None) is not None


def test_optional_async_returns_none(client):
    result = run(lambda cb: client.open_image_optional_async(oci("multi", "nope"), None, cb))
    assert client.open_image_optional_finish(result) is None


def test_puller_with_progress(client, tmp_path):
    image = client.open_image(oci("wide"), None)
    puller = CImgProxy.Puller.new(image, 4)
    assert puller.get_max_parallel() == 4
    seen = {}

    def on_progress(puller, layer, done, total):
        assert total == layer.get_size()
        seen[layer.get_digest()] = done

    puller.connect("progress", on_progress)
    directory = Gio.File.new_for_path(str(tmp_path))
    assert puller.pull_to_directory_finish(
        run(lambda cb: puller.pull_to_directory_async(directory, None, cb)))

    expected = EXPECTED["images"]["wide:latest"]["layers"]
    assert seen == {layer["digest"]: layer["size"] for layer in expected}
    for layer in expected:
        data = (tmp_path / layer["digest"].split(":", 1)[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]


def test_puller_into_memory_streams(client):
    image = client.open_image(oci("multi"), None)
    puller = CImgProxy.Puller.new(image, 2)
    sinks = {}

    def sink(puller, layer, *sink_data):
        sinks[layer.get_digest()] = Gio.MemoryOutputStream.new_resizable()
        return sinks[layer.get_digest()]

    # Keywords keep PyGObject from taking the cancellable for the sink's user data.
    assert puller.pull_finish(run(lambda cb: puller.pull_async(sink, cancellable=None,
                                                               callback=cb)))
    for digest, stream in sinks.items():
        data = stream.steal_as_bytes().get_data()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    assert len(sinks) == 3

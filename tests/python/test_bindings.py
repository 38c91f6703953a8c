# SPDX-License-Identifier: LGPL-2.1-or-later
"""CImgProxy-1.0 from Python through PyGObject, against the real skopeo.

Run by meson test with GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing into the build tree and
CIMG_TEST_IMAGES at the layouts tests/mkoci.py generated.
"""

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


def oci(layout, tag):
    return f"oci:{IMAGES}/{layout}:{tag}"


@pytest.fixture
def client():
    client = CImgProxy.Client.new(None)
    yield client
    client.close(None)


def read_all(blob, chunk=1024 * 1024):
    sha256 = hashlib.sha256()
    size = 0
    while data := blob.read_bytes(chunk, None).get_data():
        sha256.update(data)
        size += len(data)
    return "sha256:" + sha256.hexdigest(), size


def test_client_from_properties():
    client = CImgProxy.Client(tls_verify=False, anonymous=True)
    assert client.props.tls_verify == CImgProxy.TlsVerify.DISABLED
    assert client.props.anonymous
    assert client.get_protocol_version() is None
    assert client.init(None)
    assert client.get_protocol_version() == "0.2.3"
    assert client.props.protocol_version == "0.2.3"
    client.close(None)


def test_default_tls_verify_is_skopeos_choice():
    assert CImgProxy.Client().props.tls_verify == CImgProxy.TlsVerify.DEFAULT
    assert CImgProxy.Client(tls_verify=True).props.tls_verify == CImgProxy.TlsVerify.ENABLED


def test_manifest_and_config(client):
    expected = EXPECTED["images"]["multi:latest"]
    image = client.open_image(oci("multi", "latest"), None)
    assert image.get_reference() == oci("multi", "latest")

    manifest_bytes, digest = image.get_manifest(None)
    assert digest == expected["manifest_digest"]
    manifest = json.loads(manifest_bytes.get_data())
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["digest"] for layer in manifest["layers"]] == [
        layer["digest"] for layer in expected["layers"]
    ]

    config = json.loads(image.get_config(None).get_data())
    assert config["architecture"] == EXPECTED["host_arch"]
    assert config["rootfs"]["diff_ids"] == [layer["diff_id"] for layer in expected["layers"]]
    image.close(None)


def test_layer_infos(client):
    expected = EXPECTED["images"]["multi:latest"]["layers"]
    image = client.open_image(oci("multi", "latest"), None)
    infos = image.get_layer_info(None)
    assert [(i.get_digest(), i.get_size(), i.get_media_type()) for i in infos] == [
        (e["digest"], e["size"], e["media_type"]) for e in expected
    ]
    assert infos[0].props.media_type == expected[0]["media_type"]


def test_read_bytes_in_megabyte_chunks(client):
    image = client.open_image(oci("multi", "latest"), None)
    for layer in image.get_layer_info(None):
        blob = image.open_blob(layer.get_digest(), layer.get_size(), None)
        assert blob.get_size() == layer.get_size()
        assert read_all(blob) == (layer.get_digest(), layer.get_size())
        blob.close(None)


def test_splice_into_file(client, tmp_path):
    layer = EXPECTED["images"]["multi:latest"]["layers"][1]
    image = client.open_image(oci("multi", "latest"), None)
    blob = image.open_blob(layer["digest"], layer["size"], None)
    target = Gio.File.new_for_path(str(tmp_path / "layer.tar.gz"))
    out = target.replace(None, False, Gio.FileCreateFlags.NONE, None)
    copied = out.splice(
        blob,
        Gio.OutputStreamSpliceFlags.CLOSE_SOURCE | Gio.OutputStreamSpliceFlags.CLOSE_TARGET,
        None,
    )
    assert copied == layer["size"]
    data = (tmp_path / "layer.tar.gz").read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]


def test_verification_failure_is_a_glib_error(client):
    index = EXPECTED["images"]["corrupt:latest"]["corrupt_layer_index"]
    layer = EXPECTED["images"]["corrupt:latest"]["layers"][index]
    image = client.open_image(oci("corrupt", "latest"), None)
    blob = image.open_blob(layer["digest"], layer["size"], None)
    with pytest.raises(GLib.Error) as raised:
        read_all(blob)
    error = raised.value
    assert error.domain == "cimg-proxy-error-quark"
    assert error.code == CImgProxy.Error.VERIFICATION_FAILED
    assert error.matches(CImgProxy.error_quark(), CImgProxy.Error.VERIFICATION_FAILED)
    assert layer["digest"] in error.message

    # The client carries on.
    good = EXPECTED["images"]["multi:latest"]["layers"][0]
    image = client.open_image(oci("multi", "latest"), None)
    blob = image.open_blob(good["digest"], good["size"], None)
    assert read_all(blob) == (good["digest"], good["size"])


def test_open_image_optional(client):
    assert client.open_image_optional(oci("multi", "no-such-tag"), None) is None
    image = client.open_image_optional(oci("multi", "latest"), None)
    assert isinstance(image, CImgProxy.Image)

    with pytest.raises(GLib.Error) as raised:
        client.open_image(oci("multi", "no-such-tag"), None)
    assert raised.value.matches(CImgProxy.error_quark(), CImgProxy.Error.NOT_FOUND)


def test_errors_carry_codes():
    with pytest.raises(GLib.Error) as raised:
        CImgProxy.Client(skopeo_argv=["/nonexistent/skopeo"]).init(None)
    assert raised.value.matches(CImgProxy.error_quark(), CImgProxy.Error.SPAWN_FAILED)

    with pytest.raises(GLib.Error) as raised:
        CImgProxy.Client(authfile="/tmp/auth.json", anonymous=True).init(None)
    assert raised.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_ARGUMENT)

    client = CImgProxy.Client.new(None)
    with pytest.raises(GLib.Error) as raised:
        client.open_image("foo:bar", None)
    assert raised.value.matches(CImgProxy.error_quark(), CImgProxy.Error.INVALID_REFERENCE)


def test_auth_data_from_bytes(client):
    auth = GLib.Bytes.new(b'{"auths": {}}')
    with_auth = CImgProxy.Client(auth_data=auth)
    with_auth.init(None)
    image = with_auth.open_image(oci("multi", "latest"), None)
    assert len(image.get_layer_info(None)) == 3
    with_auth.close(None)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "plain"])
def test_open_layer_gives_the_tar(client, kind):
    expected = EXPECTED["images"][f"layers:{kind}"]["layers"][0]
    image = client.open_image(oci("layers", kind), None)
    layer = image.get_layer_info(None)[0]
    tar = image.open_layer(layer, None)
    assert read_all(tar)[0] == expected["diff_id"]


def test_open_layer_catches_a_lying_diff_id(client):
    image = client.open_image(oci("layers", "lying"), None)
    tar = image.open_layer(image.get_layer_info(None)[0], None)
    with pytest.raises(GLib.Error) as raised:
        read_all(tar)
    assert raised.value.matches(CImgProxy.error_quark(), CImgProxy.Error.VERIFICATION_FAILED)

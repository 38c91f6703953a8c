# SPDX-License-Identifier: LGPL-2.1-or-later
"""Credentials, certificates and mirrors from Python, against real docker-registry instances
on 127.0.0.1 (started here through tests/registry.py, stopped by pid)."""

import base64
import ctypes
import json
import os
import signal
import socket
import subprocess
import time

import gi
import pytest

gi.require_version("CImgProxy", "1.0")
from gi.repository import CImgProxy, GLib  # noqa: E402

IMAGES = os.environ["CIMG_TEST_IMAGES"]
HELPER = os.environ["CIMG_REGISTRY_HELPER"]
PR_SET_PDEATHSIG = 1


def die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def wait_for_port(port):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"no registry on port {port}")


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    started = {}
    try:
        for flavour in ("http", "https", "auth"):
            workdir = tmp_path_factory.mktemp(flavour)
            info = json.loads(subprocess.run(["/usr/bin/python3", HELPER, flavour, str(workdir)],
                                             check=True, capture_output=True,
                                             text=True).stdout)
            log = open(workdir / "registry.log", "w", encoding="utf-8")
            info["process"] = subprocess.Popen(info["argv"], stdout=log, stderr=log,
                                               preexec_fn=die_with_parent)
            wait_for_port(info["port"])
            started[flavour] = info
            push = ["skopeo", "copy", "--quiet"]
            push += (["--dest-cert-dir", info["cert_dir"]] if info["cert_dir"]
                     else ["--dest-tls-verify=false"])
            if info["username"]:
                push += ["--dest-creds", f"{info['username']}:{info['password']}"]
            subprocess.run(push + [f"oci:{IMAGES}/multi:latest",
                                   f"docker://{info['url']}/app:1"], check=True)
        yield started
    finally:
        for info in started.values():
            info["process"].kill()
            info["process"].wait()


def pull_manifest(reference, **properties):
    client = CImgProxy.Client(**properties)
    client.init(None)
    image = client.open_image(reference, None)
    _, digest = image.get_manifest(None)
    layers = image.get_layer_info(None)
    blob = image.open_blob(layers[0].get_digest(), layers[0].get_size(), None)
    while blob.read_bytes(1 << 20, None).get_size():
        pass
    client.close(None)
    return digest


def auth_json(url, username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {url: {"auth": token}}})


def test_tls(registries):
    https = registries["https"]
    reference = f"docker://{https['url']}/app:1"
    assert pull_manifest(reference, cert_dir=https["cert_dir"]).startswith("sha256:")
    with pytest.raises(GLib.Error) as raised:
        pull_manifest(reference)
    assert "certificate signed by unknown authority" in raised.value.message
    with pytest.raises(GLib.Error) as raised:
        pull_manifest(f"docker://{registries['http']['url']}/app:1")
    assert "HTTP response to HTTPS client" in raised.value.message
    assert pull_manifest(f"docker://{registries['http']['url']}/app:1", tls_verify=False)


def test_auth(registries, tmp_path):
    auth = registries["auth"]
    reference = f"docker://{auth['url']}/app:1"
    good = auth_json(auth["url"], auth["username"], auth["password"])
    authfile = tmp_path / "auth.json"
    authfile.write_text(good)

    assert pull_manifest(reference, cert_dir=auth["cert_dir"], authfile=str(authfile))
    assert pull_manifest(reference, cert_dir=auth["cert_dir"],
                         auth_data=GLib.Bytes.new(good.encode()))
    for properties in ({"auth_data": GLib.Bytes.new(
                            auth_json(auth["url"], auth["username"], "wrong").encode())},
                       {"anonymous": True}):
        with pytest.raises(GLib.Error) as raised:
            pull_manifest(reference, cert_dir=auth["cert_dir"], **properties)
        assert raised.value.matches(CImgProxy.error_quark(),
                                    CImgProxy.Error.AUTHENTICATION_FAILED)


def test_mirror(registries, tmp_path):
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "registry.example.invalid"\n\n'
                    f'[[registry.mirror]]\nlocation = "{registries["http"]["url"]}"\n'
                    'insecure = true\n')
    digest = pull_manifest("docker://registry.example.invalid/app:1",
                           registries_conf=str(conf))
    with open(os.path.join(IMAGES, "expected.json"), encoding="utf-8") as f:
        assert digest == json.load(f)["images"]["multi:latest"]["manifest_digest"]


def test_command_exit_codes_against_a_registry(registries):
    auth = registries["auth"]
    tool = os.environ["CIMG_TOOL"]
    reference = f"docker://{auth['url']}/app:1"
    refused = subprocess.run([tool, "--cert-dir", auth["cert_dir"], "--no-creds", "inspect",
                              reference], capture_output=True, text=True)
    assert refused.returncode == 4
    assert reference in refused.stderr
    missing = subprocess.run([tool, "--tls-verify=false", "inspect",
                              f"docker://{registries['http']['url']}/app:nope"],
                             capture_output=True, text=True)
    assert missing.returncode == 3

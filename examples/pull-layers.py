#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pulls every layer of an image through skopeo and checks each against its digest.

    pull-layers.py oci:/path/to/layout:latest
"""

import hashlib
import sys

import gi

gi.require_version("CImgProxy", "1.0")
from gi.repository import CImgProxy, GLib  # noqa: E402


def layer_matches(image, layer):
    blob = image.open_blob(layer.get_digest(), layer.get_size(), None)
    sha256 = hashlib.sha256()
    # The read that would end the stream raises instead if skopeo finds the blob corrupt.
    while chunk := blob.read_bytes(1024 * 1024, None).get_data():
        sha256.update(chunk)
    blob.close(None)
    return "sha256:" + sha256.hexdigest() == layer.get_digest()


def main(reference):
    client = CImgProxy.Client.new(None)
    image = client.open_image(reference, None)
    all_match = True
    for layer in image.get_layer_info(None):
        match = layer_matches(image, layer)
        print(layer.get_digest(), layer.get_size(), "OK" if match else "MISMATCH")
        all_match &= match
    client.close(None)
    return 0 if all_match else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"Usage: {sys.argv[0]} IMAGE-REFERENCE")
    try:
        sys.exit(main(sys.argv[1]))
    except GLib.Error as error:
        sys.exit(error.message)

// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Pulls every layer of an image through skopeo and checks each against its digest, reading
// asynchronously so the main loop stays free.
//
//   gjs -m pull-layers.js oci:/path/to/layout:latest

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import CImgProxy from 'gi://CImgProxy?version=1.0';
import System from 'system';

Gio._promisify(Gio.InputStream.prototype, 'read_bytes_async', 'read_bytes_finish');

async function layerMatches(image, layer) {
    const blob = image.open_blob(layer.get_digest(), layer.get_size(), null);
    const checksum = new GLib.Checksum(GLib.ChecksumType.SHA256);
    // The read that would end the stream throws instead if skopeo finds the blob corrupt.
    for (;;) {
        const bytes = await blob.read_bytes_async(1024 * 1024, GLib.PRIORITY_DEFAULT, null);
        if (bytes.get_size() === 0)
            break;
        checksum.update(bytes.toArray());
    }
    blob.close(null);
    return `sha256:${checksum.get_string()}` === layer.get_digest();
}

async function pullLayers(reference) {
    const client = CImgProxy.Client.new(null);
    const image = client.open_image(reference, null);
    let allMatch = true;
    for (const layer of image.get_layer_info(null)) {
        const match = await layerMatches(image, layer);
        print(`${layer.get_digest()} ${layer.get_size()} ${match ? 'OK' : 'MISMATCH'}`);
        allMatch &&= match;
    }
    client.close(null);
    return allMatch;
}

const [reference] = System.programArgs;
if (!reference) {
    printerr('Usage: gjs -m pull-layers.js IMAGE-REFERENCE');
    System.exit(2);
}

const loop = new GLib.MainLoop(null, false);
let status = 1;
pullLayers(reference)
    .then(allMatch => (status = allMatch ? 0 : 1))
    .catch(error => printerr(error.message))
    .finally(() => loop.quit());
loop.run();
System.exit(status);

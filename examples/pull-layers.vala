// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Pulls every layer of an image through skopeo and checks each against its digest.
//
//   pull-layers-vala oci:/path/to/layout:latest

bool layer_matches (CImgProxy.Image image, CImgProxy.LayerInfo layer) throws Error {
    var blob = image.open_blob (layer.get_digest (), layer.get_size (), null);
    var checksum = new Checksum (ChecksumType.SHA256);
    var buffer = new uint8[1024 * 1024];
    ssize_t n;
    // The read that would end the stream throws instead if skopeo finds the blob corrupt.
    while ((n = blob.read (buffer, null)) > 0) {
        checksum.update (buffer, n);
    }
    blob.close (null);
    return "sha256:" + checksum.get_string () == layer.get_digest ();
}

int main (string[] args) {
    if (args.length != 2) {
        stderr.printf ("Usage: %s IMAGE-REFERENCE\n", args[0]);
        return 2;
    }
    try {
        var client = new CImgProxy.Client (null);
        var image = client.open_image (args[1], null);
        var all_match = true;
        foreach (var layer in image.get_layer_info (null)) {
            var match = layer_matches (image, layer);
            print ("%s %lld %s\n", layer.get_digest (), layer.get_size (),
                   match ? "OK" : "MISMATCH");
            all_match &= match;
        }
        client.close (null);
        return all_match ? 0 : 1;
    } catch (Error e) {
        stderr.printf ("%s\n", e.message);
        return 1;
    }
}

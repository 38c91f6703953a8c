// SPDX-License-Identifier: LGPL-2.1-or-later
//
// CImgProxy-1.0 from GJS, against the real skopeo: the synchronous API, errors, and blobs
// read with read_bytes_async on the main loop. Prints TAP.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import CImgProxy from 'gi://CImgProxy?version=1.0';
import System from 'system';

Gio._promisify(Gio.InputStream.prototype, 'read_bytes_async', 'read_bytes_finish');
Gio._promisify(Gio.InputStream.prototype, 'close_async', 'close_finish');
Gio._promisify(CImgProxy.Client, 'new_async', 'new_finish');
for (const [klass, methods] of [
    [CImgProxy.Client, ['open_image', 'open_image_optional', 'close']],
    [CImgProxy.Image,
        ['get_manifest', 'get_config', 'get_layer_info', 'open_blob', 'open_layer', 'close']],
    [CImgProxy.Puller, ['pull_to_directory']],
]) {
    for (const method of methods)
        Gio._promisify(klass.prototype, `${method}_async`, `${method}_finish`);
}

const images = GLib.getenv('CIMG_TEST_IMAGES');
const [, expectedJson] = GLib.file_get_contents(`${images}/expected.json`);
const expected = JSON.parse(new TextDecoder().decode(expectedJson));
const oci = (layout, tag) => `oci:${images}/${layout}:${tag}`;

function assert(condition, message) {
    if (!condition)
        throw new Error(`assertion failed: ${message}`);
}

function assertEqual(actual, wanted, what) {
    assert(actual === wanted, `${what}: ${JSON.stringify(actual)} !== ${JSON.stringify(wanted)}`);
}

async function readAllAsync(blob) {
    const checksum = new GLib.Checksum(GLib.ChecksumType.SHA256);
    let size = 0;
    for (;;) {
        const bytes = await blob.read_bytes_async(1024 * 1024, GLib.PRIORITY_DEFAULT, null);
        if (bytes.get_size() === 0)
            break;
        checksum.update(bytes.toArray());
        size += bytes.get_size();
    }
    return [`sha256:${checksum.get_string()}`, size];
}

const tests = {
    'client from properties'() {
        const client = new CImgProxy.Client({tls_verify: CImgProxy.TlsVerify.DISABLED});
        client.init(null);
        assertEqual(client.get_protocol_version(), '0.2.3', 'protocol version');
        assertEqual(client.tls_verify, CImgProxy.TlsVerify.DISABLED, 'tls-verify');
        client.close(null);
    },

    'manifest, config and layer infos'() {
        const want = expected.images['multi:latest'];
        const client = CImgProxy.Client.new(null);
        const image = client.open_image(oci('multi', 'latest'), null);
        const [manifestBytes, digest] = image.get_manifest(null);
        assertEqual(digest, want.manifest_digest, 'manifest digest');
        const manifest = JSON.parse(new TextDecoder().decode(manifestBytes.toArray()));
        assertEqual(manifest.layers.length, 3, 'layers in the manifest');
        const config = JSON.parse(new TextDecoder().decode(image.get_config(null).toArray()));
        assertEqual(config.rootfs.diff_ids.join(), want.layers.map(l => l.diff_id).join(),
            'diff_ids');
        const infos = image.get_layer_info(null);
        const describe = i => `${i.get_digest()} ${i.get_size()} ${i.get_media_type()}`;
        assertEqual(infos.map(describe).join(),
            want.layers.map(l => `${l.digest} ${l.size} ${l.media_type}`).join(), 'layer infos');
        client.close(null);
    },

    async 'every layer with read_bytes_async, one after another'() {
        const client = CImgProxy.Client.new(null);
        const image = client.open_image(oci('multi', 'latest'), null);
        for (const layer of image.get_layer_info(null)) {
            const blob = image.open_blob(layer.get_digest(), layer.get_size(), null);
            const [digest, size] = await readAllAsync(blob);
            assertEqual(digest, layer.get_digest(), 'layer digest');
            assertEqual(size, layer.get_size(), 'layer size');
            await blob.close_async(GLib.PRIORITY_DEFAULT, null);
        }
        client.close(null);
    },

    async 'all layers at once, and the main loop keeps running'() {
        const client = CImgProxy.Client.new(null);
        const image = client.open_image(oci('multi', 'latest'), null);
        let ticks = 0;
        const ticker = GLib.timeout_add(GLib.PRIORITY_DEFAULT, 1, () => {
            ticks++;
            return GLib.SOURCE_CONTINUE;
        });
        const layers = image.get_layer_info(null);
        const results = await Promise.all(layers.map(layer =>
            readAllAsync(image.open_blob(layer.get_digest(), layer.get_size(), null))));
        GLib.source_remove(ticker);
        layers.forEach((layer, i) => assertEqual(results[i][0], layer.get_digest(), 'digest'));
        assert(ticks > 0, 'the main loop ran while the layers streamed');
        client.close(null);
    },

    async 'a corrupt blob rejects the read that would end it'() {
        const corrupt = expected.images['corrupt:latest'];
        const layer = corrupt.layers[corrupt.corrupt_layer_index];
        const client = CImgProxy.Client.new(null);
        const image = client.open_image(oci('corrupt', 'latest'), null);
        const blob = image.open_blob(layer.digest, layer.size, null);
        try {
            await readAllAsync(blob);
            throw new Error('the corrupt blob was read without error');
        } catch (error) {
            assert(error.matches?.(CImgProxy.error_quark(), CImgProxy.Error.VERIFICATION_FAILED),
                `unexpected error: ${error}`);
        }
        client.close(null);
    },

    async 'the whole flow with async calls'() {
        const want = expected.images['wide:latest'];
        const client = await CImgProxy.Client.new_async(null);
        const image = await client.open_image_async(oci('wide', 'latest'), null);
        const [, digest] = await image.get_manifest_async(null);
        assertEqual(digest, want.manifest_digest, 'manifest digest');
        const layers = await image.get_layer_info_async(null);
        const digests = await Promise.all(layers.map(async layer => {
            const blob = await image.open_blob_async(layer.get_digest(), layer.get_size(), null);
            const [read] = await readAllAsync(blob);
            return read;
        }));
        assertEqual(digests.join(), want.layers.map(l => l.digest).join(), 'layer digests');
        assertEqual(await client.open_image_optional_async(oci('wide', 'nope'), null), null,
            'missing image');
        await image.close_async(null);
        assert(await client.close_async(null), 'close');
    },

    async 'a puller reports progress and fills a directory'() {
        const want = expected.images['wide:latest'];
        const client = CImgProxy.Client.new(null);
        const image = client.open_image(oci('wide', 'latest'), null);
        const puller = CImgProxy.Puller.new(image, 4);
        const done = new Map();
        puller.connect('progress', (_puller, layer, bytesDone, total) => {
            assertEqual(total, layer.get_size(), 'total');
            done.set(layer.get_digest(), bytesDone);
        });
        const dir = GLib.dir_make_tmp('cimgproxy-gjs-XXXXXX');
        await puller.pull_to_directory_async(Gio.File.new_for_path(dir), null);
        for (const layer of want.layers) {
            assertEqual(done.get(layer.digest), layer.size, 'bytes done');
            const hex = layer.digest.split(':')[1];
            const [, contents] = GLib.file_get_contents(`${dir}/${hex}`);
            assertEqual(GLib.compute_checksum_for_data(GLib.ChecksumType.SHA256, contents), hex,
                'layer file');
            GLib.unlink(`${dir}/${hex}`);
        }
        GLib.rmdir(dir);
        client.close(null);
    },

    async 'a zstd layer as its tar, read without blocking'() {
        const want = expected.images['layers:zstd'].layers[0];
        const client = CImgProxy.Client.new(null);
        const image = await client.open_image_async(oci('layers', 'zstd'), null);
        const [layer] = await image.get_layer_info_async(null);
        const tar = await image.open_layer_async(layer, null);
        const [digest] = await readAllAsync(tar);
        assertEqual(digest, want.diff_id, 'diff_id');
        client.close(null);
    },

    'open_image_optional returns null for a missing image'() {
        const client = CImgProxy.Client.new(null);
        assertEqual(client.open_image_optional(oci('multi', 'no-such-tag'), null), null,
            'missing image');
        try {
            client.open_image('foo:bar', null);
            throw new Error('a bad reference was accepted');
        } catch (error) {
            assert(error.matches?.(CImgProxy.error_quark(), CImgProxy.Error.INVALID_REFERENCE),
                `unexpected error: ${error}`);
        }
        client.close(null);
    },
};

async function runAll() {
    const names = Object.keys(tests);
    print(`1..${names.length}`);
    let failed = 0;
    for (const [i, name] of names.entries()) {
        try {
            await tests[name]();
            print(`ok ${i + 1} - ${name}`);
        } catch (error) {
            failed++;
            print(`not ok ${i + 1} - ${name}`);
            for (const line of `${error}\n${error.stack ?? ''}`.split('\n'))
                print(`# ${line}`);
        }
    }
    return failed;
}

const loop = new GLib.MainLoop(null, false);
let status = 1;
runAll()
    .then(failed => (status = failed ? 1 : 0))
    .catch(error => printerr(error))
    .finally(() => loop.quit());
loop.run();
System.exit(status);

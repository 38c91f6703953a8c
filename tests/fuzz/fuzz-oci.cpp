// SPDX-License-Identifier: LGPL-2.1-or-later
//
// libFuzzer target for the OCI JSON the core reads itself: manifests, layer-info arrays,
// digests and protocol versions. The first input byte picks the parser; the rest is its
// input. Parsers may only ever fail with Error(Protocol), and what they accept must hold
// up: every layer has a valid digest, a media type and a size of at least -1.

#include "core/error.hpp"
#include "core/oci.hpp"
#include "core/protocol.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace cimgproxy::core;

namespace {

void check_layers(const std::vector<LayerInfo>& layers) {
    for (const LayerInfo& layer : layers)
        if (!is_valid_digest(layer.digest) || layer.size < -1)
            abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0)
        return 0;
    std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        switch (data[0] % 4) {
        case 0:
            check_layers(parse_manifest_layers(input));
            break;
        case 1:
            check_layers(parse_layer_infos(input));
            break;
        case 2:
            is_valid_digest(input);
            break;
        case 3: {
            auto version = Version::parse(input);
            if (version &&
                Version::parse(version->to_string())->to_string() != version->to_string())
                abort();
            break;
        }
        }
    } catch (const Error& error) {
        if (error.kind() != ErrorKind::Protocol)
            abort();
    }
    return 0;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The little of the OCI image format the core reads itself: layer descriptors, from the
// proxy's layer-info replies or, on proxies too old to have those, from the manifest.

#pragma once

#include <json-glib/json-glib.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cimgproxy::core {

struct LayerInfo {
    std::string digest;
    int64_t size = -1; // -1 when the source does not know it
    std::string media_type;
};

// True for "algorithm:encoded" as the OCI image spec defines a digest; sha256 and sha512
// digests must have their exact length in lower-case hex.
bool is_valid_digest(std::string_view digest);

// A JSON array of {"digest", "size", "media_type"} objects, as GetLayerInfo returns it inline
// and GetLayerInfoPiped writes it into its pipe.
std::vector<LayerInfo> parse_layer_infos(JsonNode* array);
std::vector<LayerInfo> parse_layer_infos(std::string_view json);

// The "layers" of an OCI image manifest.
std::vector<LayerInfo> parse_manifest_layers(std::string_view manifest);

} // namespace cimgproxy::core

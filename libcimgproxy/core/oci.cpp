// SPDX-License-Identifier: LGPL-2.1-or-later

#include "oci.hpp"

#include "error.hpp"
#include "protocol.hpp"

#include <memory>

namespace cimgproxy::core {

namespace {

[[noreturn]] void malformed(const std::string& message) {
    throw Error(ErrorKind::Protocol, message);
}

JsonNodePtr parse_json(std::string_view json, const char* what) {
    std::unique_ptr<JsonParser, decltype(&g_object_unref)> parser(json_parser_new_immutable(),
                                                                  g_object_unref);
    GError* error = nullptr;
    if (!json_parser_load_from_data(parser.get(), json.data(), static_cast<gssize>(json.size()),
                                    &error)) {
        std::string message = format("The %s is not valid JSON: %s", what, error->message);
        g_error_free(error);
        malformed(message);
    }
    JsonNode* root = json_parser_get_root(parser.get());
    if (root == nullptr)
        malformed(format("The %s is empty", what));
    return JsonNodePtr(json_node_copy(root));
}

const char* string_member(JsonObject* object, const char* name) {
    JsonNode* node = json_object_get_member(object, name);
    if (node == nullptr || json_node_get_value_type(node) != G_TYPE_STRING)
        return nullptr;
    return json_node_get_string(node);
}

// Layer infos and manifest descriptors differ only in how they spell the media type.
std::vector<LayerInfo> parse_descriptors(JsonNode* array, const char* media_type_key,
                                         const char* what) {
    if (array == nullptr || !JSON_NODE_HOLDS_ARRAY(array))
        malformed(format("The %s is not a JSON array", what));
    JsonArray* items = json_node_get_array(array);
    std::vector<LayerInfo> layers;
    layers.reserve(json_array_get_length(items));
    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonNode* item = json_array_get_element(items, i);
        if (!JSON_NODE_HOLDS_OBJECT(item))
            malformed(format("Layer %u of the %s is not a JSON object", i, what));
        JsonObject* object = json_node_get_object(item);
        const char* digest = string_member(object, "digest");
        const char* media_type = string_member(object, media_type_key);
        std::optional<int64_t> size = json_to_int(json_object_get_member(object, "size"));
        if (digest == nullptr || !is_valid_digest(digest))
            malformed(format("Layer %u of the %s has no valid digest", i, what));
        if (media_type == nullptr)
            malformed(format("Layer %u of the %s has no media type", i, what));
        if (!size || *size < -1)
            malformed(format("Layer %u of the %s has no valid size", i, what));
        layers.push_back(LayerInfo{digest, *size, media_type});
    }
    return layers;
}

bool is_lower_hex(std::string_view text) {
    for (char c : text)
        if (!g_ascii_isdigit(c) && !(c >= 'a' && c <= 'f'))
            return false;
    return true;
}

} // namespace

bool is_valid_digest(std::string_view digest) {
    size_t colon = digest.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == digest.size())
        return false;
    std::string_view algorithm = digest.substr(0, colon);
    std::string_view encoded = digest.substr(colon + 1);
    if (algorithm == "sha256")
        return encoded.size() == 64 && is_lower_hex(encoded);
    if (algorithm == "sha512")
        return encoded.size() == 128 && is_lower_hex(encoded);
    // Other registered algorithms: algorithm ::= [a-z0-9]+ ([+._-] [a-z0-9]+)*,
    // encoded ::= [a-zA-Z0-9=_-]+ (OCI image-spec, descriptor.md).
    bool after_separator = true;
    for (char c : algorithm) {
        bool separator = c == '+' || c == '.' || c == '_' || c == '-';
        if (separator ? after_separator : !(g_ascii_islower(c) || g_ascii_isdigit(c)))
            return false;
        after_separator = separator;
    }
    if (after_separator)
        return false;
    for (char c : encoded)
        if (!g_ascii_isalnum(c) && c != '=' && c != '_' && c != '-')
            return false;
    return true;
}

std::vector<LayerInfo> parse_layer_infos(JsonNode* array) {
    return parse_descriptors(array, "media_type", "layer information");
}

std::vector<LayerInfo> parse_layer_infos(std::string_view json) {
    JsonNodePtr root = parse_json(json, "layer information");
    return parse_layer_infos(root.get());
}

std::vector<LayerInfo> parse_manifest_layers(std::string_view manifest) {
    JsonNodePtr root = parse_json(manifest, "manifest");
    if (!JSON_NODE_HOLDS_OBJECT(root.get()))
        malformed("The manifest is not a JSON object");
    JsonNode* layers = json_object_get_member(json_node_get_object(root.get()), "layers");
    return parse_descriptors(layers, "mediaType", "manifest's layer list");
}

} // namespace cimgproxy::core

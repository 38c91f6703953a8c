// SPDX-License-Identifier: LGPL-2.1-or-later

#include "protocol.hpp"

#include "error.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace cimgproxy::core {

namespace {

// Go decodes every JSON number as a float64, so skopeo refuses integers above 2^53 - 1.
constexpr double kMaxJsonInteger = 9007199254740991.0;

[[noreturn]] void violation(const std::string& message) {
    throw Error(ErrorKind::Protocol, message);
}

} // namespace

std::optional<Version> Version::parse(std::string_view text) {
    Version version;
    unsigned* parts[] = {&version.major, &version.minor, &version.patch};
    size_t position = 0;
    for (size_t i = 0; i < 3; i++) {
        if (i > 0) {
            if (position >= text.size() || text[position] != '.')
                return std::nullopt;
            position++;
        }
        size_t start = position;
        unsigned value = 0;
        while (position < text.size() && g_ascii_isdigit(text[position]) && position - start < 6)
            value = value * 10 + static_cast<unsigned>(text[position++] - '0');
        if (position == start)
            return std::nullopt;
        *parts[i] = value;
    }
    if (position != text.size())
        return std::nullopt;
    return version;
}

std::string Version::to_string() const {
    return format("%u.%u.%u", major, minor, patch);
}

bool Version::at_least(const Version& other) const {
    if (major != other.major)
        return major > other.major;
    if (minor != other.minor)
        return minor > other.minor;
    return patch >= other.patch;
}

const MethodInfo& method_info(Method method) {
    static const MethodInfo table[] = {
        {"Initialize", {0, 2, 1}, "1.5.1", Payload::None},
        {"OpenImage", {0, 2, 1}, "1.5.1", Payload::None},
        {"OpenImageOptional", {0, 2, 4}, "1.11", Payload::None},
        {"CloseImage", {0, 2, 1}, "1.5.1", Payload::None},
        {"GetManifest", {0, 2, 1}, "1.5.1", Payload::Pipe},
        {"GetFullConfig", {0, 2, 3}, "1.6", Payload::Pipe},
        {"GetBlob", {0, 2, 1}, "1.5.1", Payload::Pipe},
        {"GetRawBlob", {0, 2, 8}, "1.19", Payload::RawBlob},
        {"GetLayerInfo", {0, 2, 5}, "1.11", Payload::None},
        {"GetLayerInfoPiped", {0, 2, 7}, "1.19", Payload::Pipe},
        {"FinishPipe", {0, 2, 1}, "1.5.1", Payload::None},
        {"Shutdown", {0, 2, 1}, "1.5.1", Payload::None},
    };
    return table[static_cast<size_t>(method)];
}

namespace {

// A JSON string literal. Requests carry references and digests, so only the characters
// JSON itself forbids need escaping; other bytes pass as they are.
void append_json_string(std::string& out, const std::string& text) {
    out += '"';
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char escape[8];
            snprintf(escape, sizeof escape, "\\u%04x", c);
            out += escape;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
}

} // namespace

// Written out by hand: a request is one flat array of strings and integers, and a JSON
// builder and generator per request cost more than the rest of a round trip's client side.
std::string build_request(Method method, const std::vector<Arg>& args) {
    std::string request = "{\"method\":";
    append_json_string(request, method_info(method).name);
    request += ",\"args\":[";
    for (size_t i = 0; i < args.size(); i++) {
        if (i > 0)
            request += ',';
        if (const auto* text = std::get_if<std::string>(&args[i])) {
            append_json_string(request, *text);
        } else {
            uint64_t number = std::get<uint64_t>(args[i]);
            if (static_cast<double>(number) > kMaxJsonInteger)
                throw Error(
                    ErrorKind::InvalidArgument,
                    format("%" PRIu64 " is larger than the proxy protocol can carry", number));
            request += std::to_string(number);
        }
    }
    request += "]}";
    return request;
}

std::optional<uint64_t> json_to_uint(JsonNode* node) {
    std::optional<int64_t> value = json_to_int(node);
    if (!value || *value < 0)
        return std::nullopt;
    return static_cast<uint64_t>(*value);
}

std::optional<int64_t> json_to_int(JsonNode* node) {
    if (node == nullptr || !JSON_NODE_HOLDS_VALUE(node))
        return std::nullopt;
    GType type = json_node_get_value_type(node);
    if (type == G_TYPE_INT64)
        return json_node_get_int(node);
    if (type == G_TYPE_DOUBLE) {
        double number = json_node_get_double(node);
        if (std::isfinite(number) && std::floor(number) == number &&
            std::fabs(number) <= kMaxJsonInteger)
            return static_cast<int64_t>(number);
    }
    return std::nullopt;
}

Reply parse_reply(Method method, std::string_view packet, std::vector<Fd> fds) {
    GObjectPtr<JsonParser> parser(json_parser_new_immutable());
    return parse_reply(parser.get(), method, packet, std::move(fds));
}

Reply parse_reply(JsonParser* parser, Method method, std::string_view packet, std::vector<Fd> fds) {
    const MethodInfo& info = method_info(method);
    Reply reply;
    reply.fds = std::move(fds);

    GError* parse_error = nullptr;
    if (!json_parser_load_from_data(parser, packet.data(), static_cast<gssize>(packet.size()),
                                    &parse_error)) {
        std::string message = parse_error->message;
        g_error_free(parse_error);
        violation(format("The reply to %s is not JSON: %s", info.name, message.c_str()));
    }
    JsonNode* root = json_parser_get_root(parser);
    if (root == nullptr || !JSON_NODE_HOLDS_OBJECT(root))
        violation(format("The reply to %s is not a JSON object", info.name));
    JsonObject* object = json_node_get_object(root);

    JsonNode* success = json_object_get_member(object, "success");
    if (success == nullptr || json_node_get_value_type(success) != G_TYPE_BOOLEAN)
        violation(format("The reply to %s has no boolean “success”", info.name));
    reply.success = json_node_get_boolean(success);

    JsonNode* value = json_object_get_member(object, "value");
    reply.value.reset(value != nullptr ? json_node_copy(value) : json_node_new(JSON_NODE_NULL));

    JsonNode* pipe_id = json_object_get_member(object, "pipeid");
    std::optional<uint64_t> id = pipe_id != nullptr ? json_to_uint(pipe_id) : uint64_t{0};
    if (!id || *id > UINT32_MAX)
        violation(format("The reply to %s has an invalid “pipeid”", info.name));
    reply.pipe_id = static_cast<uint32_t>(*id);

    for (auto [name, field] :
         {std::pair{"error", &reply.error}, std::pair{"error_code", &reply.error_code}}) {
        JsonNode* member = json_object_get_member(object, name);
        if (member == nullptr || JSON_NODE_HOLDS_NULL(member))
            continue;
        if (json_node_get_value_type(member) != G_TYPE_STRING)
            violation(format("The reply to %s has a non-string “%s”", info.name, name));
        *field = json_node_get_string(member);
    }

    // What fds may come with the reply follows from the method alone; skopeo never sends fds
    // with a failure.
    size_t expected_fds = 0;
    bool expect_pipe_id = false;
    if (reply.success && info.payload == Payload::Pipe) {
        expected_fds = 1;
        expect_pipe_id = true;
    } else if (reply.success && info.payload == Payload::RawBlob) {
        expected_fds = 2;
    }
    if (reply.fds.size() != expected_fds)
        violation(format("The reply to %s carried %zu file descriptors instead of %zu", info.name,
                         reply.fds.size(), expected_fds));
    if (expect_pipe_id != (reply.pipe_id != 0))
        violation(format(expect_pipe_id ? "The reply to %s carried a pipe without a pipe id"
                                        : "The reply to %s has an unexpected pipe id",
                         info.name));
    return reply;
}

} // namespace cimgproxy::core

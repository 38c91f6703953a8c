// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The wire format of `skopeo experimental-image-proxy`: which methods exist since which
// protocol version, what a request looks like, and what a well-formed reply is. Everything
// here is a pure function of its input, so it can be tested and fuzzed without a proxy.

#pragma once

#include "fd.hpp"

#include <json-glib/json-glib.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cimgproxy::core {

struct JsonNodeDeleter {
    void operator()(JsonNode* node) const { json_node_unref(node); }
};
using JsonNodePtr = std::unique_ptr<JsonNode, JsonNodeDeleter>;

struct GObjectDeleter {
    void operator()(gpointer object) const { g_object_unref(object); }
};
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectDeleter>;

struct Version {
    unsigned major = 0;
    unsigned minor = 0;
    unsigned patch = 0;

    static std::optional<Version> parse(std::string_view text);
    std::string to_string() const;
    bool at_least(const Version& other) const;
};

// The oldest protocol the library speaks: skopeo 1.6, which added GetFullConfig.
inline constexpr Version kMinimumVersion{0, 2, 3};

enum class Method {
    Initialize,
    OpenImage,
    OpenImageOptional,
    CloseImage,
    GetManifest,
    GetFullConfig,
    GetBlob,
    GetRawBlob,
    GetLayerInfo,
    GetLayerInfoPiped,
    FinishPipe,
    Shutdown,
};

// What travels with a successful reply besides the JSON.
enum class Payload {
    None,    // no fd, pipeid 0
    Pipe,    // one pipe read end, pipeid names it for FinishPipe
    RawBlob, // two read ends (data, error) and pipeid 0
};

struct MethodInfo {
    const char* name;
    Version since;
    // The first skopeo release whose proxy speaks `since`, for error messages.
    const char* skopeo_release;
    Payload payload;
};

const MethodInfo& method_info(Method method);

using Arg = std::variant<std::string, uint64_t>;

// The requests skopeo accepts are at most this long; longer ones arrive truncated.
inline constexpr size_t kMaxRequestSize = 32 * 1024;

std::string build_request(Method method, const std::vector<Arg>& args);

struct Reply {
    bool success = false;
    JsonNodePtr value; // never null: a JSON null node when skopeo sent null
    uint32_t pipe_id = 0;
    std::string error;
    std::string error_code; // protocol 0.2.8 and later; empty before
    std::vector<Fd> fds;
};

// Parses one reply packet and checks that the fds that came with it fit `method`. Throws
// Error(Protocol) on anything skopeo would never send; the fds are closed in that case.
Reply parse_reply(Method method, std::string_view packet, std::vector<Fd> fds);
// The same with a parser of the caller's, which a client keeps for all its replies: a new
// one per reply costs as much as the parsing.
Reply parse_reply(JsonParser* parser, Method method, std::string_view packet, std::vector<Fd> fds);

// An integer in a JSON node the way skopeo's Go encoder writes one: a non-negative whole
// number, possibly serialized as a float.
std::optional<uint64_t> json_to_uint(JsonNode* node);
std::optional<int64_t> json_to_int(JsonNode* node);

} // namespace cimgproxy::core

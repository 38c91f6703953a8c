// SPDX-License-Identifier: LGPL-2.1-or-later

#include "protocol.hpp"

#include "error.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <tuple>

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

namespace {

// Replies are flat objects of a few scalars, and json-glib's parse of one took two thirds of
// the client's user time in a round trip: they are scanned here, and only a value that is an
// object or an array (GetLayerInfo's list) goes to json-glib. The scanner accepts exactly
// RFC 8259 JSON, and strings only as valid UTF-8.
class Scanner {
  public:
    explicit Scanner(std::string_view text)
        : text_(text) {}

    size_t position() const { return position_; }

    // Skips whitespace, then takes `c` if it comes next.
    bool take(char c) {
        skip_space();
        if (position_ == text_.size() || text_[position_] != c)
            return false;
        position_++;
        return true;
    }

    bool at_end() {
        skip_space();
        return position_ == text_.size();
    }

    std::optional<std::string> string();
    // One value as a node; nullptr if it is not JSON.
    JsonNodePtr value(JsonParser* parser);
    bool skip_value(unsigned depth = 0);

  private:
    // Deeper than any reply skopeo sends; the bound keeps the recursion of skip_value() short.
    static constexpr unsigned kMaxDepth = 64;

    void skip_space() {
        while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\t' ||
                                            text_[position_] == '\n' || text_[position_] == '\r'))
            position_++;
    }

    bool literal(std::string_view word) {
        if (text_.substr(position_, word.size()) != word)
            return false;
        position_ += word.size();
        return true;
    }

    bool digits() {
        size_t start = position_;
        while (position_ < text_.size() && g_ascii_isdigit(text_[position_]))
            position_++;
        return position_ > start;
    }

    std::optional<std::string_view> number();
    std::optional<gunichar> hex4();

    std::string_view text_;
    size_t position_ = 0;
};

std::optional<gunichar> Scanner::hex4() {
    if (text_.size() - position_ < 4)
        return std::nullopt;
    gunichar unit = 0;
    for (int i = 0; i < 4; i++) {
        int digit = g_ascii_xdigit_value(text_[position_++]);
        if (digit < 0)
            return std::nullopt;
        unit = unit * 16 + static_cast<gunichar>(digit);
    }
    return unit;
}

std::optional<std::string> Scanner::string() {
    if (!take('"'))
        return std::nullopt;
    std::string out;
    for (;;) {
        size_t run = position_;
        while (run < text_.size() && text_[run] != '"' && text_[run] != '\\' &&
               static_cast<unsigned char>(text_[run]) >= 0x20)
            run++;
        out.append(text_.data() + position_, run - position_);
        position_ = run;
        if (position_ == text_.size() || static_cast<unsigned char>(text_[position_]) < 0x20)
            return std::nullopt;
        if (text_[position_++] == '"')
            break;
        if (position_ == text_.size())
            return std::nullopt;
        char escape = text_[position_++];
        switch (escape) {
        case '"':
        case '\\':
        case '/':
            out += escape;
            break;
        case 'b':
            out += '\b';
            break;
        case 'f':
            out += '\f';
            break;
        case 'n':
            out += '\n';
            break;
        case 'r':
            out += '\r';
            break;
        case 't':
            out += '\t';
            break;
        case 'u': {
            std::optional<gunichar> unit = hex4();
            if (!unit || (*unit >= 0xdc00 && *unit <= 0xdfff))
                return std::nullopt;
            gunichar character = *unit;
            // A character beyond the BMP comes as a surrogate pair.
            if (character >= 0xd800 && character <= 0xdbff) {
                if (!literal("\\u"))
                    return std::nullopt;
                std::optional<gunichar> low = hex4();
                if (!low || *low < 0xdc00 || *low > 0xdfff)
                    return std::nullopt;
                character = 0x10000 + ((character - 0xd800) << 10) + (*low - 0xdc00);
            }
            char utf8[6];
            out.append(utf8, static_cast<size_t>(g_unichar_to_utf8(character, utf8)));
            break;
        }
        default:
            return std::nullopt;
        }
    }
    // Also refuses NUL, which a C string would silently cut at.
    if (!g_utf8_validate_len(out.data(), out.size(), nullptr))
        return std::nullopt;
    return out;
}

std::optional<std::string_view> Scanner::number() {
    skip_space();
    size_t start = position_;
    literal("-");
    if (!literal("0") && !digits())
        return std::nullopt;
    if (literal(".") && !digits())
        return std::nullopt;
    if (literal("e") || literal("E")) {
        if (!literal("+"))
            literal("-");
        if (!digits())
            return std::nullopt;
    }
    return text_.substr(start, position_ - start);
}

bool Scanner::skip_value(unsigned depth) {
    if (depth > kMaxDepth)
        return false;
    skip_space();
    if (position_ == text_.size())
        return false;
    switch (text_[position_]) {
    case '"':
        return string().has_value();
    case 't':
        return literal("true");
    case 'f':
        return literal("false");
    case 'n':
        return literal("null");
    case '{':
        position_++;
        if (take('}'))
            return true;
        do {
            if (!string() || !take(':') || !skip_value(depth + 1))
                return false;
        } while (take(','));
        return take('}');
    case '[':
        position_++;
        if (take(']'))
            return true;
        do {
            if (!skip_value(depth + 1))
                return false;
        } while (take(','));
        return take(']');
    default:
        return number().has_value();
    }
}

JsonNodePtr Scanner::value(JsonParser* parser) {
    skip_space();
    size_t start = position_;
    char first = position_ < text_.size() ? text_[position_] : '\0';

    if (first == '"') {
        std::optional<std::string> text = string();
        return text ? JsonNodePtr(json_node_init_string(json_node_alloc(), text->c_str()))
                    : nullptr;
    }
    if (first == '{' || first == '[') {
        if (!skip_value())
            return nullptr;
        std::string_view text = text_.substr(start, position_ - start);
        if (!json_parser_load_from_data(parser, text.data(), static_cast<gssize>(text.size()),
                                        nullptr))
            return nullptr;
        return JsonNodePtr(json_parser_steal_root(parser));
    }
    if (literal("true") || literal("false"))
        return JsonNodePtr(json_node_init_boolean(json_node_alloc(), first == 't'));
    if (literal("null"))
        return JsonNodePtr(json_node_init_null(json_node_alloc()));

    // json-glib's types for numbers: an integer as gint64 where it fits, otherwise a double.
    std::optional<std::string_view> number_text = number();
    if (!number_text)
        return nullptr;
    std::string digits(*number_text);
    if (digits.find_first_of(".eE") == std::string::npos) {
        errno = 0;
        long long integer = strtoll(digits.c_str(), nullptr, 10);
        if (errno == 0)
            return JsonNodePtr(json_node_init_int(json_node_alloc(), integer));
    }
    return JsonNodePtr(
        json_node_init_double(json_node_alloc(), g_ascii_strtod(digits.c_str(), nullptr)));
}

} // namespace

Reply parse_reply(Method method, std::string_view packet, std::vector<Fd> fds) {
    GObjectPtr<JsonParser> parser(json_parser_new_immutable());
    return parse_reply(parser.get(), method, packet, std::move(fds));
}

Reply parse_reply(JsonParser* parser, Method method, std::string_view packet, std::vector<Fd> fds) {
    const MethodInfo& info = method_info(method);
    Reply reply;
    reply.fds = std::move(fds);

    // The members a reply has; a later duplicate wins, as in json-glib and Go.
    static const char* const names[] = {"success", "value", "pipeid", "error", "error_code"};
    JsonNodePtr members[std::size(names)];
    Scanner scanner(packet);
    if (!scanner.take('{'))
        violation(format("The reply to %s is not a JSON object", info.name));
    bool well_formed = true;
    if (!scanner.take('}')) {
        do {
            std::optional<std::string> name = scanner.string();
            if (!name || !scanner.take(':')) {
                well_formed = false;
                break;
            }
            auto known = std::find(std::begin(names), std::end(names), *name);
            if (known != std::end(names))
                well_formed =
                    (members[known - std::begin(names)] = scanner.value(parser)) != nullptr;
            else
                well_formed = scanner.skip_value();
        } while (well_formed && scanner.take(','));
        well_formed = well_formed && scanner.take('}');
    }
    if (!well_formed || !scanner.at_end())
        violation(format("The reply to %s is not JSON (it goes wrong near byte %zu)", info.name,
                         scanner.position()));
    auto& [success, value, pipe_id, error, error_code] = members;

    if (success == nullptr || json_node_get_value_type(success.get()) != G_TYPE_BOOLEAN)
        violation(format("The reply to %s has no boolean “success”", info.name));
    reply.success = json_node_get_boolean(success.get());

    reply.value = value != nullptr ? std::move(value) : JsonNodePtr(json_node_new(JSON_NODE_NULL));

    std::optional<uint64_t> id = pipe_id != nullptr ? json_to_uint(pipe_id.get()) : uint64_t{0};
    if (!id || *id > UINT32_MAX)
        violation(format("The reply to %s has an invalid “pipeid”", info.name));
    reply.pipe_id = static_cast<uint32_t>(*id);

    for (auto [name, member, field] :
         {std::tuple{"error", error.get(), &reply.error},
          std::tuple{"error_code", error_code.get(), &reply.error_code}}) {
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

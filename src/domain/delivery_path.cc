// Delivery paths, folder and filename rules and ETags of files; see
// delivery_path.h for the rules.
#include "domain/delivery_path.h"

#include <string_view>

#include "core/crypto.h"
#include "core/json.h"

namespace bitmill::domain {

namespace {

constexpr size_t kMaxSegmentBytes = 255;
constexpr size_t kMaxPathBytes = 1024;

std::string_view trimSlashes(std::string_view text) {
    while (!text.empty() && text.front() == '/') {
        text.remove_prefix(1);
    }
    while (!text.empty() && text.back() == '/') {
        text.remove_suffix(1);
    }
    return text;
}

// Quotes `text` as a JSON string, so control characters show as escapes.
// JSON leaves DEL (0x7f) unescaped, so that one is escaped here.
std::string quoted(std::string_view text) {
    std::string json = Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
    std::string out;
    for (char c : json) {
        if (c == '\x7f') {
            out += "\\u007f";
        } else {
            out += c;
        }
    }
    return out;
}

Error invalidPath(std::string_view field, std::string_view value, std::string_view rule) {
    return Error::invalidArgument("invalid " + std::string(field) + " " + quoted(value) + ": " +
                                  std::string(rule));
}

bool isControl(char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
}

// Checks one segment. `field` is "folder" or "filename" and `value` the
// whole value, for the message.
Status validateSegment(std::string_view segment, std::string_view field, std::string_view value) {
    if (segment.empty()) {
        return invalidPath(field, value,
                           "must not contain empty segments (\"//\" or a trailing \"/\")");
    }
    if (segment == "." || segment == "..") {
        return invalidPath(field, value, "must not contain \".\" or \"..\" segments");
    }
    if (segment.size() > kMaxSegmentBytes) {
        return invalidPath(
            field, value,
            "each segment must be at most 255 bytes, got " + std::to_string(segment.size()));
    }
    return okStatus();
}

// Checks the rules shared by folders and filenames on the whole value.
Status validateWhole(std::string_view value, std::string_view field) {
    if (value.empty()) {
        return invalidPath(field, value, "must not be empty");
    }
    if (value.size() > kMaxPathBytes) {
        return invalidPath(field, value,
                           "must be at most 1024 bytes, got " + std::to_string(value.size()));
    }
    for (char c : value) {
        if (isControl(c)) {
            return invalidPath(field, value, "must not contain control characters");
        }
    }
    if (value.front() == '/') {
        return invalidPath(field, value, "must not start with \"/\"");
    }
    return okStatus();
}

}  // namespace

std::string deliveryPathFor(const FileRecord& file) {
    std::string name;
    if (file.filename && !file.filename->empty()) {
        name = *file.filename;
    } else {
        name = file.id;
        if (!file.props.extension.empty()) {
            name += "." + file.props.extension;
        }
    }

    std::string_view folder = file.folder ? trimSlashes(*file.folder) : std::string_view{};
    if (folder.empty()) {
        return name;
    }
    return std::string(folder) + "/" + name;
}

std::string deliveryEtagFor(const FileRecord& file) {
    if (!file.etag.empty()) {
        return file.etag;
    }
    std::string identity =
        file.id + ":" + std::to_string(file.filesize) + ":" + std::to_string(file.updated_ms);
    return "\"" + crypto::sha256Hex(identity).substr(0, 32) + "\"";
}

Status validateFolder(std::string_view folder) {
    BM_RETURN_IF_ERROR(validateWhole(folder, "folder"));
    std::string_view rest = folder;
    while (true) {
        size_t slash = rest.find('/');
        BM_RETURN_IF_ERROR(validateSegment(rest.substr(0, slash), "folder", folder));
        if (slash == std::string_view::npos) {
            return okStatus();
        }
        rest.remove_prefix(slash + 1);
    }
}

Status validateFilename(std::string_view filename) {
    BM_RETURN_IF_ERROR(validateWhole(filename, "filename"));
    if (filename.find('/') != std::string_view::npos) {
        return invalidPath("filename", filename,
                           "must not contain \"/\"; put directories in \"folder\"");
    }
    return validateSegment(filename, "filename", filename);
}

}  // namespace bitmill::domain

// Media checks through ffprobe, ffmpeg, vips and exiftool.
#include "media_inspect.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "process.h"

namespace bitmill::e2e {
namespace {

constexpr auto kToolTimeout = std::chrono::seconds(120);

CommandResult runTool(const std::vector<std::string>& argv) {
    CommandOptions options;
    options.timeout = kToolTimeout;
    return runChecked(argv, options);
}

// Parses a binary PPM (P6, maxval 255) as written by ffmpeg's ppm encoder.
RgbImage parsePpm(const std::string& bytes, const std::string& source) {
    size_t position = 0;
    auto nextToken = [&]() {
        while (position < bytes.size()) {
            char c = bytes[position];
            if (c == '#') {
                while (position < bytes.size() && bytes[position] != '\n') {
                    ++position;
                }
            } else if (std::isspace(static_cast<unsigned char>(c))) {
                ++position;
            } else {
                break;
            }
        }
        size_t start = position;
        while (position < bytes.size() &&
               !std::isspace(static_cast<unsigned char>(bytes[position]))) {
            ++position;
        }
        return bytes.substr(start, position - start);
    };

    if (nextToken() != "P6") {
        throw std::runtime_error("decoded frame of " + source + " is not a binary PPM");
    }
    RgbImage image;
    image.width = std::stoi(nextToken());
    image.height = std::stoi(nextToken());
    int max_value = std::stoi(nextToken());

    ++position;  // the single whitespace byte before the raster
    size_t expected = static_cast<size_t>(image.width) * image.height * 3;
    if (max_value != 255 || bytes.size() < position + expected) {
        throw std::runtime_error("decoded frame of " + source + " is truncated or not 8-bit");
    }
    image.pixels.assign(bytes.begin() + static_cast<std::ptrdiff_t>(position),
                        bytes.begin() + static_cast<std::ptrdiff_t>(position + expected));
    return image;
}

uint32_t readBigEndian32(const unsigned char* bytes) {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
           uint32_t{bytes[3]};
}

}  // namespace

const Json* ProbeResult::stream(const std::string& codec_type) const& {
    if (!raw.contains("streams")) {
        return nullptr;
    }
    for (const auto& entry : raw["streams"]) {
        if (entry.value("codec_type", "") != codec_type) {
            continue;
        }
        bool cover_art = entry.contains("disposition") &&
                         entry["disposition"].value("attached_pic", 0) == 1;
        if (codec_type == "video" && cover_art) {
            continue;
        }
        return &entry;
    }
    return nullptr;
}

int ProbeResult::streamCount(const std::string& codec_type) const {
    int count = 0;
    if (!raw.contains("streams")) {
        return 0;
    }
    for (const auto& entry : raw["streams"]) {
        if (entry.value("codec_type", "") == codec_type) {
            ++count;
        }
    }
    return count;
}

std::string ProbeResult::formatName() const {
    return raw.contains("format") ? raw["format"].value("format_name", "") : "";
}

double ProbeResult::duration() const {
    if (!raw.contains("format") || !raw["format"].contains("duration")) {
        return -1;
    }
    return std::stod(raw["format"]["duration"].get<std::string>());
}

double ProbeResult::videoRotation() const {
    const Json* video = stream("video");
    if (video == nullptr) {
        return 0;
    }
    if (video->contains("side_data_list")) {
        for (const auto& side_data : (*video)["side_data_list"]) {
            if (side_data.contains("rotation")) {
                return side_data["rotation"].get<double>();
            }
        }
    }
    if (video->contains("tags") && (*video)["tags"].contains("rotate")) {
        return std::stod((*video)["tags"]["rotate"].get<std::string>());
    }
    return 0;
}

double ProbeResult::videoFrameRate() const {
    const Json* video = stream("video");
    return video == nullptr ? -1 : parseRate(video->value("avg_frame_rate", "0/0"));
}

double parseRate(const std::string& rate) {
    size_t slash = rate.find('/');
    if (slash == std::string::npos) {
        return std::stod(rate);
    }
    double numerator = std::stod(rate.substr(0, slash));
    double denominator = std::stod(rate.substr(slash + 1));
    return denominator == 0 ? -1 : numerator / denominator;
}

ProbeResult probeMedia(const std::filesystem::path& file) {
    CommandResult result = runTool({"ffprobe", "-v", "error", "-of", "json", "-show_streams",
                                    "-show_format", file.string()});
    ProbeResult probe;
    probe.raw = Json::parse(result.stdout_text);
    return probe;
}

std::vector<int> RgbImage::at(int x, int y) const {
    if (x < 0 || y < 0 || x >= width || y >= height) {
        throw std::out_of_range("pixel (" + std::to_string(x) + ", " + std::to_string(y) +
                                ") outside " + std::to_string(width) + "x" +
                                std::to_string(height));
    }
    size_t offset = (static_cast<size_t>(y) * width + x) * 3;
    return {pixels[offset], pixels[offset + 1], pixels[offset + 2]};
}

std::vector<int> RgbImage::atFraction(double fx, double fy) const {
    int x = std::min(width - 1, static_cast<int>(fx * width));
    int y = std::min(height - 1, static_cast<int>(fy * height));
    return at(x, y);
}

RgbImage RgbImage::rotated180() const {
    RgbImage result = *this;
    size_t count = static_cast<size_t>(width) * height;
    for (size_t i = 0; i < count; ++i) {
        size_t source = (count - 1 - i) * 3;
        for (int channel = 0; channel < 3; ++channel) {
            result.pixels[i * 3 + channel] = pixels[source + channel];
        }
    }
    return result;
}

RgbImage decodeFrame(const std::filesystem::path& file, double at_seconds, int scale_width,
                     int scale_height) {
    std::vector<std::string> argv = {"ffmpeg", "-v", "error", "-nostdin"};
    if (at_seconds > 0) {
        argv.insert(argv.end(), {"-ss", std::to_string(at_seconds)});
    }
    argv.insert(argv.end(), {"-i", file.string(), "-frames:v", "1"});
    if (scale_width > 0 && scale_height > 0) {
        argv.insert(argv.end(), {"-vf", "scale=" + std::to_string(scale_width) + ":" +
                                            std::to_string(scale_height) + ":flags=area"});
    }
    argv.insert(argv.end(), {"-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "-"});
    CommandResult result = runTool(argv);
    return parsePpm(result.stdout_text, file.string());
}

RgbImage decodeImageScaled(const std::filesystem::path& file, int width, int height) {
    TempDir scratch("bitmill-e2e-decode");
    std::filesystem::path scaled = scratch / "scaled.png";
    runTool({"vips", "thumbnail", file.string(), scaled.string(), std::to_string(width),
             "--height", std::to_string(height), "--size", "force", "--no-rotate"});
    return decodeFrame(scaled);
}

double meanAbsoluteDifference(const RgbImage& left, const RgbImage& right) {
    if (left.width != right.width || left.height != right.height) {
        throw std::invalid_argument("meanAbsoluteDifference: sizes differ");
    }
    double total = 0;
    for (size_t i = 0; i < left.pixels.size(); ++i) {
        total += std::abs(int{left.pixels[i]} - int{right.pixels[i]});
    }
    return left.pixels.empty() ? 0 : total / static_cast<double>(left.pixels.size());
}

ImageHeader readImageHeader(const std::filesystem::path& file) {
    CommandResult result = runTool({"vipsheader", "-a", file.string()});
    ImageHeader header;
    std::istringstream lines(result.stdout_text);
    std::string line;
    while (std::getline(lines, line)) {
        size_t colon = line.find(": ");
        if (colon == std::string::npos) {
            continue;
        }
        header.fields.emplace(line.substr(0, colon), line.substr(colon + 2));
    }

    auto field = [&](const std::string& name) {
        auto found = header.fields.find(name);
        return found == header.fields.end() ? std::string() : found->second;
    };

    header.width = std::stoi(field("width"));
    header.height = std::stoi(field("height"));
    header.bands = std::stoi(field("bands"));
    header.format = field("format");
    header.interpretation = field("interpretation");
    header.loader = field("vips-loader");
    if (!field("n-pages").empty()) {
        header.pages = std::stoi(field("n-pages"));
    }
    // libvips reports EXIF orientation as "orientation" and in the raw
    // "exif-ifd0-Orientation: 6 (Right-top, ...)" field.
    std::string orientation = field("orientation");
    if (orientation.empty()) {
        orientation = field("exif-ifd0-Orientation");
    }
    if (!orientation.empty() && std::isdigit(static_cast<unsigned char>(orientation[0]))) {
        header.orientation = std::stoi(orientation);
    }
    return header;
}

std::vector<double> imagePixel(const std::filesystem::path& file, int x, int y) {
    CommandResult result =
        runTool({"vips", "getpoint", file.string(), std::to_string(x), std::to_string(y)});
    std::istringstream values(result.stdout_text);
    std::vector<double> bands;
    double value = 0;
    while (values >> value) {
        bands.push_back(value);
    }
    return bands;
}

std::vector<std::string> topLevelBoxes(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw std::runtime_error("open " + file.string() + " failed");
    }
    in.seekg(0, std::ios::end);
    const uint64_t file_size = static_cast<uint64_t>(in.tellg());
    std::vector<std::string> boxes;
    uint64_t offset = 0;
    while (offset + 8 <= file_size) {
        unsigned char header[16];
        in.seekg(static_cast<std::streamoff>(offset));
        in.read(reinterpret_cast<char*>(header), 8);
        uint64_t size = readBigEndian32(header);
        boxes.emplace_back(reinterpret_cast<const char*>(header + 4), 4);
        if (size == 1) {
            // A 64-bit "largesize" follows the type.
            in.read(reinterpret_cast<char*>(header + 8), 8);
            size = (uint64_t{readBigEndian32(header + 8)} << 32) | readBigEndian32(header + 12);
        } else if (size == 0) {
            break;  // the box runs to the end of the file
        }
        if (size < 8) {
            break;
        }
        offset += size;
    }
    return boxes;
}

bool isFaststart(const std::filesystem::path& file) {
    for (const auto& box : topLevelBoxes(file)) {
        if (box == "moov") {
            return true;
        }
        if (box == "mdat") {
            return false;
        }
    }
    return false;
}

std::string exifTag(const std::filesystem::path& file, const std::string& tag) {
    CommandResult result = runTool({"exiftool", "-s", "-s", "-s", "-n", "-" + tag, file.string()});
    std::string value = result.stdout_text;
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
        value.pop_back();
    }
    return value;
}

}  // namespace bitmill::e2e

// Geometry and background parsing for image conversion.
#include "media/vips/image_geometry.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace bitmill::media::vips {

namespace {

struct Position {
    std::string_view name;
    VipsCompassDirection direction;
    VipsInteresting interesting;  // what thumbnail's crop keeps for cover
};

constexpr std::array<Position, 11> kPositions = {{
    {"center", VIPS_COMPASS_DIRECTION_CENTRE, VIPS_INTERESTING_CENTRE},
    {"top", VIPS_COMPASS_DIRECTION_NORTH, VIPS_INTERESTING_NONE},
    {"bottom", VIPS_COMPASS_DIRECTION_SOUTH, VIPS_INTERESTING_NONE},
    {"left", VIPS_COMPASS_DIRECTION_WEST, VIPS_INTERESTING_NONE},
    {"right", VIPS_COMPASS_DIRECTION_EAST, VIPS_INTERESTING_NONE},
    {"top_left", VIPS_COMPASS_DIRECTION_NORTH_WEST, VIPS_INTERESTING_NONE},
    {"top_right", VIPS_COMPASS_DIRECTION_NORTH_EAST, VIPS_INTERESTING_NONE},
    {"bottom_left", VIPS_COMPASS_DIRECTION_SOUTH_WEST, VIPS_INTERESTING_NONE},
    {"bottom_right", VIPS_COMPASS_DIRECTION_SOUTH_EAST, VIPS_INTERESTING_NONE},
    {"attention", VIPS_COMPASS_DIRECTION_CENTRE, VIPS_INTERESTING_ATTENTION},
    {"entropy", VIPS_COMPASS_DIRECTION_CENTRE, VIPS_INTERESTING_ENTROPY},
}};

std::optional<int> hexDigit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return std::nullopt;
}

Result<Position> findPosition(const std::string& name) {
    for (const Position& position : kPositions) {
        if (position.name == name) {
            return position;
        }
    }
    return Error::invalidArgument(fmt::format(
        "position must be center, top, bottom, left, right, top_left, top_right, bottom_left, "
        "bottom_right, attention or entropy, got '{}'",
        name));
}

// Returns a width or height in pixels; a percentage is of `input_size`.
Result<std::optional<int>> resolveDimension(const std::optional<Dimension>& dimension,
                                            int input_size, std::string_view name) {
    if (!dimension) {
        return std::optional<int>();
    }
    if (dimension->value <= 0) {
        return Error::invalidArgument(
            fmt::format("{} must be positive, got {}", name, dimension->value));
    }
    int64_t pixels = dimension->value;
    if (dimension->percent) {
        pixels = std::llround(static_cast<double>(input_size) * dimension->value / 100.0);
        pixels = std::max<int64_t>(pixels, 1);
    }
    if (pixels > VIPS_MAX_COORD) {
        return Error::invalidArgument(
            fmt::format("{} must be at most {} pixels, got {}", name, VIPS_MAX_COORD, pixels));
    }
    return std::optional<int>(static_cast<int>(pixels));
}

int scaledSide(int side, int target, int reference) {
    const int64_t scaled = std::llround(static_cast<double>(side) * target / reference);
    return static_cast<int>(std::clamp<int64_t>(scaled, 1, VIPS_MAX_COORD));
}

}  // namespace

Result<Rgba> parseBackground(const std::string& text) {
    if (text == "transparent") {
        return Rgba{0, 0, 0, 0};
    }
    const bool well_formed = (text.size() == 7 || text.size() == 9) && text[0] == '#';
    Rgba colour{0, 0, 0, 255};
    for (size_t channel = 0; well_formed && channel * 2 + 2 < text.size(); ++channel) {
        const auto high = hexDigit(text[channel * 2 + 1]);
        const auto low = hexDigit(text[channel * 2 + 2]);
        if (!high || !low) {
            break;
        }
        colour[channel] = *high * 16 + *low;
        if (channel * 2 + 3 == text.size()) {
            return colour;
        }
    }
    return Error::invalidArgument(
        fmt::format("background must be #rrggbb, #rrggbbaa or transparent, got '{}'", text));
}

Result<ResizePlan> planResize(int input_width, int input_height, const Geometry& geometry,
                              bool animated) {
    BM_ASSIGN_OR_RETURN(std::optional<int> width,
                        resolveDimension(geometry.width, input_width, "width"));
    BM_ASSIGN_OR_RETURN(std::optional<int> height,
                        resolveDimension(geometry.height, input_height, "height"));
    if (geometry.fit != "fill" && geometry.fit != "cover" && geometry.fit != "contain") {
        return Error::invalidArgument(
            fmt::format("fit must be fill, cover or contain, got '{}'", geometry.fit));
    }
    BM_ASSIGN_OR_RETURN(Position position, findPosition(geometry.position));

    ResizePlan plan;
    if (!width && !height) {
        plan.thumbnail_width = plan.output_width = input_width;
        plan.thumbnail_height = plan.output_height = input_height;
        return plan;
    }
    if (!height) {
        plan.thumbnail_width = plan.output_width = *width;
        plan.thumbnail_height = VIPS_MAX_COORD;
        plan.output_height = scaledSide(input_height, *width, input_width);
        return plan;
    }
    if (!width) {
        plan.thumbnail_width = VIPS_MAX_COORD;
        plan.thumbnail_height = plan.output_height = *height;
        plan.output_width = scaledSide(input_width, *height, input_height);
        return plan;
    }

    plan.output_width = *width;
    plan.output_height = *height;
    if (geometry.fit == "fill") {
        plan.thumbnail_width = *width;
        plan.thumbnail_height = *height;
        plan.size = VIPS_SIZE_FORCE;
        return plan;
    }
    if (geometry.fit == "contain") {
        // A smart position has nothing to choose when the whole picture is
        // kept, so attention and entropy place it in the centre.
        plan.thumbnail_width = *width;
        plan.thumbnail_height = *height;
        plan.canvas = Canvas{*width, *height, position.direction, true};
        return plan;
    }

    // Cover: thumbnail's crop cuts the whole strip of an animation, not
    // each frame, so animations scale to cover and crop per frame.
    if (position.interesting != VIPS_INTERESTING_NONE && !animated) {
        plan.thumbnail_width = *width;
        plan.thumbnail_height = *height;
        plan.crop = position.interesting;
        return plan;
    }
    // NOTE: an animation with position attention or entropy is cropped in
    // the centre, because a smart crop per frame would make the picture jump.
    const bool width_binds =
        static_cast<int64_t>(*width) * input_height >= static_cast<int64_t>(*height) * input_width;
    plan.thumbnail_width = width_binds ? *width : VIPS_MAX_COORD;
    plan.thumbnail_height = width_binds ? VIPS_MAX_COORD : *height;
    plan.canvas = Canvas{*width, *height, position.direction, false};
    return plan;
}

}  // namespace bitmill::media::vips

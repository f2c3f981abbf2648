// Turns the geometry and background options of an image conversion into
// the arguments of libvips' thumbnail operation and a final canvas step.
// Pure computation: nothing here decodes pixels.
#pragma once

#include <vips/vips.h>

#include <array>
#include <optional>
#include <string>

#include "core/error.h"
#include "media/media.h"

namespace bitmill::media::vips {

// An RGBA colour with 0..255 channels.
using Rgba = std::array<double, 4>;

// Parses "#rrggbb", "#rrggbbaa" (hex digits, any case) or "transparent".
// Errors: InvalidArgument naming the accepted forms.
Result<Rgba> parseBackground(const std::string& text);

// Places each thumbnailed frame in a width x height canvas at `direction`:
// cropping for cover (extending edge pixels if rounding left the frame a
// pixel short), padding with the background for contain.
struct Canvas {
    int width = 0;
    int height = 0;
    VipsCompassDirection direction = VIPS_COMPASS_DIRECTION_CENTRE;
    bool pad = false;  // true for contain, false for cover
};

// Arguments of vips_thumbnail and the canvas step for one conversion.
struct ResizePlan {
    int thumbnail_width = 0;   // VIPS_MAX_COORD when only the height binds
    int thumbnail_height = 0;  // VIPS_MAX_COORD when only the width binds
    VipsSize size = VIPS_SIZE_BOTH;
    VipsInteresting crop = VIPS_INTERESTING_NONE;
    std::optional<Canvas> canvas;
    int output_width = 0;  // expected size of one output frame
    int output_height = 0;
};

// Plans the resize of one upright frame of input_width x input_height.
// `animated` avoids thumbnail's own cropping, which works on the whole
// strip of frames, and uses the per-frame canvas instead.
//
// Errors: InvalidArgument for a non-positive or too large width or height,
// an unknown fit or position.
Result<ResizePlan> planResize(int input_width, int input_height, const Geometry& geometry,
                              bool animated);

}  // namespace bitmill::media::vips

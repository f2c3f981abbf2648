// Frame grabs that hand the decoded frame over in memory, for conversion
// by libvips without an intermediate file.
#pragma once

#include <string>

#include "core/config.h"
#include "core/error.h"
#include "media/media.h"
#include "media/rgb_pixels.h"

namespace bitmill::media::ffmpeg {

// Decodes the frame of `input` that `options` selects, as grabFrame does,
// and returns it as upright 8-bit sRGB pixels. Errors are grabFrame's.
Result<RgbPixels> grabRgbFrame(const std::string& input, const FrameGrabOptions& options,
                               const Limits& limits);

}  // namespace bitmill::media::ffmpeg

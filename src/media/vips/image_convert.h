// Image conversion of pixels already in memory, such as a decoded video
// frame; media::convertImage (media/media.h) converts files.
#pragma once

#include <string>

#include "core/config.h"
#include "core/error.h"
#include "media/media.h"
#include "media/rgb_pixels.h"

namespace bitmill::media::vips {

// Resizes, pads or crops and saves `pixels` as convertImage does an sRGB
// image file without metadata. Errors are convertImage's. `pixels` stays
// the caller's and must stay valid until this returns.
Status convertPixels(const RgbPixels& pixels, const std::string& output,
                     const ImageOptions& options, const Limits& limits);

}  // namespace bitmill::media::vips

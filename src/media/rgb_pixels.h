// Decoded pixels that the FFmpeg side of the media layer hands to the
// libvips side in memory, so a video frame reaches the image encoders
// without a file in between.
#pragma once

#include <cstdint>
#include <memory>

namespace bitmill::media {

// An upright picture of 8-bit sRGB pixels, 3 bytes each, rows top to
// bottom with no padding between them.
struct RgbPixels {
    int width = 0;
    int height = 0;
    const uint8_t* pixels = nullptr;
    // Owns the memory that `pixels` points into.
    std::shared_ptr<const void> owner;
};

}  // namespace bitmill::media

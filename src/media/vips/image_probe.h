// Probing of still and animated images with libvips: the image half of
// media::probe, which hands everything else to FFmpeg.
#pragma once

#include <string>

#include "core/config.h"
#include "core/error.h"
#include "core/media_properties.h"

namespace bitmill::media::vips {

// Returns true when an enabled libvips image loader recognizes the content
// of the file at `path` (JPEG, PNG, WebP, GIF, HEIC, AVIF, SVG or TIFF),
// whatever its extension. False for a missing or empty file. Thread-safe.
bool isImage(const std::string& path);

// Describes the image at `path`: format from content, upright width and
// height, EXIF rotation, transparency, animation and frame count, average
// colour and a tiny WebP placeholder as a data URI. Decodes a shrunken copy
// only after the header passed the pixel limit.
//
// Errors: UnsupportedMedia for an empty, truncated, corrupt or unsupported
// file; ResourceExhausted when width x height exceeds
// limits.max_image_pixels. Thread-safe; reads only `path`.
Result<MediaProperties> probeImage(const std::string& path, const Limits& limits);

}  // namespace bitmill::media::vips

// Probing of audio and video files with libavformat: the FFmpeg half of
// media::probe, which hands images to libvips.
#pragma once

#include <string>

#include "core/config.h"
#include "core/error.h"
#include "core/media_properties.h"

namespace bitmill::media::ffmpeg {

// Describes the audio or video file at `path` from its bytes. The container
// is detected from content, never from the extension. The kind is "video"
// when a video stream other than cover art exists, else "audio".
//
// Errors: UnsupportedMedia for an empty, truncated or unreadable file, a
// still image (probe it with libvips instead) or a file without audio or
// video; ResourceExhausted when the upright width or height or the duration
// exceeds `limits`. Thread-safe; reads only `path`.
Result<MediaProperties> probeAudioVideo(const std::string& path, const Limits& limits);

}  // namespace bitmill::media::ffmpeg

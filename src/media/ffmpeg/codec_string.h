// RFC 6381 "codecs" parameter entries (e.g. "avc1.64001f", "mp4a.40.2")
// for the streams of a demuxed file, used in MIME types of probed files.
#pragma once

#include <string>

#include "media/ffmpeg/ffmpeg.h"

namespace bitmill::media::ffmpeg {

// Returns the codecs entry of `stream`, read from its decoder configuration
// record (avcC, hvcC, av1C, AudioSpecificConfig) or, without one, from the
// in-band parameter sets or the codec parameters. Returns an empty string
// for codecs without a registered entry. VP9 and AV1 levels missing from the
// file are estimated from the frame size and rate, so they can be one level
// higher than the encoder's.
std::string codecsEntry(const AVStream* stream);

}  // namespace bitmill::media::ffmpeg

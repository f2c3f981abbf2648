// Output choices of transcodeVideo: which containers take which codecs,
// option validation, the quality-to-CRF table, and opening the video and
// audio encoders with web-safe settings.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "media/ffmpeg/ffmpeg.h"
#include "media/media.h"

namespace bitmill::media::ffmpeg {

// Checks every option that can be judged without the input: names of
// format, codec and audio codec and their combination, quality, bitrates,
// fps, start and end, geometry and background. Returns InvalidArgument
// naming the option, the value and what is accepted.
Status validateVideoOptions(const VideoOptions& options);

// Returns the libavformat muxer name for a validated `format`.
const char* muxerName(const std::string& format);

// True for mp4 and mov, the containers that take +faststart and hvc1.
bool isQuickTimeFamily(const std::string& format);

// Returns the encoder's CRF for `quality` 0..100 of a validated `codec`.
int crfForQuality(std::string_view codec, int quality);

// Size and timing the video encoder is opened with.
struct VideoEncoderSetup {
    int width = 0;
    int height = 0;
    AVRational time_base = {0, 1};   // of the frames sent to the encoder
    AVRational frame_rate = {0, 1};  // nominal rate, a rate-control hint
    bool global_header = false;      // the muxer wants codec headers out of band
};

// Opens the encoder for `options.codec` producing 8-bit yuv420p tagged
// BT.709 limited range. Internal when this FFmpeg build lacks the encoder.
Result<CodecContextPtr> openVideoEncoder(const VideoOptions& options,
                                         const VideoEncoderSetup& setup);

// Input audio properties the audio encoder is chosen from.
struct AudioEncoderSetup {
    int input_sample_rate = 0;
    int input_channels = 0;
    bool global_header = false;
};

// Opens the encoder for `options.audio_codec` (not "none"): the input rate
// when the encoder supports it (always 48 kHz for Opus), at most two
// channels, `options.audio_bitrate` or 128 kb/s.
Result<CodecContextPtr> openAudioEncoder(const VideoOptions& options,
                                         const AudioEncoderSetup& setup);

}  // namespace bitmill::media::ffmpeg

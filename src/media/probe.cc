// media::probe: sends images to libvips and everything else to FFmpeg,
// deciding by the file's content, never by its extension.
#include <filesystem>
#include <system_error>

#include "media/ffmpeg/av_probe.h"
#include "media/media.h"
#include "media/vips/image_probe.h"

namespace bitmill::media {

Result<MediaProperties> probe(const std::string& path, const Limits& limits) {
    std::error_code size_error;
    const auto size = std::filesystem::file_size(path, size_error);
    if (size_error) {
        return Error::internal("probe input: cannot open the file",
                               path + ": " + size_error.message());
    }
    if (size == 0) {
        return Error::unsupportedMedia("file is empty");
    }
    // A GIF is an image here, animated or not. Animated WebP and HEIC must
    // go to libvips because FFmpeg 5.1 can decode neither.
    if (vips::isImage(path)) {
        return vips::probeImage(path, limits);
    }
    return ffmpeg::probeAudioVideo(path, limits);
}

}  // namespace bitmill::media

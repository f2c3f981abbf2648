// media::convertVideoFrame: a frame grab whose pixels go to the image
// encoders in memory.
#include "media/ffmpeg/frame_grab.h"
#include "media/media.h"
#include "media/vips/image_convert.h"

namespace bitmill::media {

Status convertVideoFrame(const std::string& input, const std::string& output,
                         const FrameGrabOptions& grab, const ImageOptions& options,
                         const Limits& limits) {
    BM_ASSIGN_OR_RETURN(const RgbPixels pixels, ffmpeg::grabRgbFrame(input, grab, limits));
    return vips::convertPixels(pixels, output, options, limits);
}

}  // namespace bitmill::media

// Builds RFC 6381 codecs entries. The formats come from ISO/IEC 14496-15
// Annex E (avc1, hvc1), the VP9 codec ISO media binding (vp09), the AV1
// ISOBMFF binding (av01) and RFC 6381 itself (mp4a).
#include "media/ffmpeg/codec_string.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

namespace bitmill::media::ffmpeg {

namespace {

std::string format(const char* pattern, auto... values) {
    std::array<char, 64> buffer{};
    std::snprintf(buffer.data(), buffer.size(), pattern, values...);
    return buffer.data();
}

bool hasTag(const AVCodecParameters* parameters, const char* tag) {
    return parameters->codec_tag == MKTAG(tag[0], tag[1], tag[2], tag[3]);
}

// Returns the payload (after the NAL header of `header_size` bytes) of the
// first Annex B NAL unit whose type `type_of` returns `wanted`, with
// emulation prevention bytes (00 00 03) removed. Only the first `limit`
// payload bytes are returned.
template <typename TypeOf>
std::vector<uint8_t> findNalPayload(const AVCodecParameters* parameters, TypeOf type_of,
                                    int wanted, int header_size, size_t limit) {
    const uint8_t* data = parameters->extradata;
    const int size = parameters->extradata_size;
    for (int i = 0; i + 3 + header_size <= size; ++i) {
        if (data[i] != 0 || data[i + 1] != 0 || data[i + 2] != 1) {
            continue;
        }
        const int start = i + 3;
        if (type_of(data[start]) != wanted) {
            continue;
        }
        std::vector<uint8_t> payload;
        int zeros = 0;
        for (int j = start + header_size; j < size && payload.size() < limit; ++j) {
            if (zeros >= 2 && data[j] == 3) {
                zeros = 0;
                continue;
            }
            zeros = data[j] == 0 ? zeros + 1 : 0;
            payload.push_back(data[j]);
        }
        return payload;
    }
    return {};
}

std::string h264Entry(const AVCodecParameters* parameters) {
    const char* prefix = hasTag(parameters, "avc3") ? "avc3" : "avc1";
    const uint8_t* extradata = parameters->extradata;

    // avcC record: version 1, then profile_idc, constraint flags, level_idc.
    if (parameters->extradata_size >= 4 && extradata[0] == 1) {
        return format("%s.%02x%02x%02x", prefix, extradata[1], extradata[2], extradata[3]);
    }
    // Annex B parameter sets: the SPS (NAL type 7) starts with the same three bytes.
    const auto sps = findNalPayload(
        parameters, [](uint8_t header) { return header & 0x1f; }, 7, 1, 3);
    if (sps.size() == 3) {
        return format("%s.%02x%02x%02x", prefix, sps[0], sps[1], sps[2]);
    }
    if (parameters->profile == FF_PROFILE_UNKNOWN || parameters->level <= 0) {
        return prefix;
    }
    const int profile_idc = parameters->profile & 0xff;
    int constraints = 0;
    if (parameters->profile & FF_PROFILE_H264_CONSTRAINED) {
        constraints |= 0x40;
    }
    if (parameters->profile & FF_PROFILE_H264_INTRA) {
        constraints |= 0x10;
    }
    return format("%s.%02x%02x%02x", prefix, profile_idc, constraints, parameters->level);
}

// Formats the 12 bytes of an HEVC general profile_tier_level: profile space,
// tier, profile_idc, 32 compatibility flags, 48 constraint bits, level_idc.
std::string hevcEntryFromProfileTierLevel(const char* prefix, const uint8_t* ptl) {
    static constexpr std::array<const char*, 4> kProfileSpaces = {"", "A", "B", "C"};
    const int profile_space = ptl[0] >> 6;
    const bool high_tier = (ptl[0] >> 5) & 1;
    const int profile_idc = ptl[0] & 0x1f;

    // The compatibility flags are written in reverse bit order.
    uint32_t flags = (uint32_t{ptl[1]} << 24) | (uint32_t{ptl[2]} << 16) |
                     (uint32_t{ptl[3]} << 8) | uint32_t{ptl[4]};
    uint32_t reversed = 0;
    for (int bit = 0; bit < 32; ++bit) {
        reversed = (reversed << 1) | ((flags >> bit) & 1);
    }
    std::string entry = format("%s.%s%d.%X.%c%d", prefix, kProfileSpaces[profile_space],
                               profile_idc, reversed, high_tier ? 'H' : 'L', ptl[11]);

    // Constraint bytes, with trailing zero bytes left out.
    int last_nonzero = -1;
    for (int i = 0; i < 6; ++i) {
        if (ptl[5 + i] != 0) {
            last_nonzero = i;
        }
    }
    for (int i = 0; i <= last_nonzero; ++i) {
        entry += format(".%X", ptl[5 + i]);
    }
    return entry;
}

std::string hevcEntry(const AVCodecParameters* parameters) {
    const char* prefix = hasTag(parameters, "hev1") ? "hev1" : "hvc1";

    // hvcC record: version 1, then the profile_tier_level bytes.
    if (parameters->extradata_size >= 13 && parameters->extradata[0] == 1) {
        return hevcEntryFromProfileTierLevel(prefix, parameters->extradata + 1);
    }
    // Annex B: the SPS (NAL type 33) has one byte of ids before them.
    const auto sps = findNalPayload(
        parameters, [](uint8_t header) { return (header >> 1) & 0x3f; }, 33, 2, 13);
    if (sps.size() == 13) {
        return hevcEntryFromProfileTierLevel(prefix, sps.data() + 1);
    }
    return prefix;
}

int bitDepth(const AVCodecParameters* parameters) {
    const AVPixFmtDescriptor* descriptor =
        av_pix_fmt_desc_get(static_cast<AVPixelFormat>(parameters->format));
    return descriptor != nullptr ? descriptor->comp[0].depth : 8;
}

// Frame size and rate bounds of a codec level.
struct LevelBound {
    int level;
    int64_t max_picture_size;   // luma samples per frame
    int64_t max_sample_rate;    // luma samples per second
};

std::optional<int> estimateLevel(const AVStream* stream, const LevelBound* bounds,
                                 size_t count) {
    const AVCodecParameters* parameters = stream->codecpar;
    const int64_t picture_size = int64_t{parameters->width} * parameters->height;
    double fps = av_q2d(stream->avg_frame_rate);
    if (!(fps > 0)) {
        fps = 30;
    }
    const auto sample_rate = static_cast<int64_t>(picture_size * fps);
    for (size_t i = 0; i < count; ++i) {
        if (picture_size <= bounds[i].max_picture_size &&
            sample_rate <= bounds[i].max_sample_rate) {
            return bounds[i].level;
        }
    }
    return std::nullopt;
}

std::string vp9Entry(const AVStream* stream) {
    // Levels of the VP9 bitstream specification, annex A; the entry writes
    // level 2.1 as 21.
    static constexpr LevelBound kLevels[] = {
        {10, 36864, 829440},          {11, 73728, 2764800},
        {20, 122880, 4608000},        {21, 245760, 9216000},
        {30, 552960, 20736000},       {31, 983040, 36864000},
        {40, 2228224, 83558400},      {41, 2228224, 160432128},
        {50, 8912896, 311951360},     {51, 8912896, 588251136},
        {52, 8912896, 1176502272},    {60, 35651584, 1176502272},
        {61, 35651584, 2353004544},   {62, 35651584, 4706009088},
    };
    const AVCodecParameters* parameters = stream->codecpar;
    const int profile = parameters->profile >= 0 ? parameters->profile : 0;
    std::optional<int> level;
    if (parameters->level > 0) {
        level = parameters->level;
    } else {
        level = estimateLevel(stream, kLevels, std::size(kLevels));
    }
    if (!level) {
        return "vp09";
    }
    return format("vp09.%02d.%02d.%02d", profile, *level, bitDepth(parameters));
}

std::string av1Entry(const AVStream* stream) {
    const AVCodecParameters* parameters = stream->codecpar;
    const uint8_t* extradata = parameters->extradata;

    // av1C record: marker and version byte 0x81, then profile and level,
    // then tier and bit depth flags.
    if (parameters->extradata_size >= 4 && extradata[0] == 0x81) {
        const int profile = extradata[1] >> 5;
        const int level = extradata[1] & 0x1f;
        const bool high_tier = extradata[2] >> 7;
        const bool high_bit_depth = (extradata[2] >> 6) & 1;
        const bool twelve_bit = (extradata[2] >> 5) & 1;
        const int depth = twelve_bit ? 12 : (high_bit_depth ? 10 : 8);
        return format("av01.%d.%02d%c.%02d", profile, level, high_tier ? 'H' : 'M', depth);
    }

    // seq_level_idx values of the AV1 specification, annex A.3, with the
    // maximum picture size and display rate of each level.
    static constexpr LevelBound kLevels[] = {
        {0, 147456, 4423680},        {1, 278784, 8363520},
        {4, 665856, 19975680},       {5, 1065024, 31950720},
        {8, 2359296, 70778880},      {9, 2359296, 141557760},
        {12, 8912896, 267386880},    {13, 8912896, 534773760},
        {14, 8912896, 1069547520},   {15, 8912896, 1069547520},
        {16, 35651584, 1069547520},  {17, 35651584, 2139095040},
        {18, 35651584, 4278190080},
    };
    const int profile = parameters->profile >= 0 ? parameters->profile : 0;
    std::optional<int> level;
    if (parameters->level > 0) {
        level = parameters->level;
    } else {
        level = estimateLevel(stream, kLevels, std::size(kLevels));
    }
    if (!level) {
        return "av01";
    }
    return format("av01.%d.%02dM.%02d", profile, *level, bitDepth(parameters));
}

std::string aacEntry(const AVCodecParameters* parameters) {
    // The audio object type is the profile plus one (AAC LC is type 2).
    int object_type = 0;
    if (parameters->profile != FF_PROFILE_UNKNOWN) {
        object_type = parameters->profile + 1;
    } else if (parameters->extradata_size >= 2) {
        // AudioSpecificConfig: 5 bits of object type, 31 escapes to 6 more.
        object_type = parameters->extradata[0] >> 3;
        if (object_type == 31) {
            object_type = 32 + (((parameters->extradata[0] & 7) << 3) |
                                (parameters->extradata[1] >> 5));
        }
    }
    if (object_type <= 0) {
        object_type = 2;
    }
    return format("mp4a.40.%d", object_type);
}

}  // namespace

std::string codecsEntry(const AVStream* stream) {
    const AVCodecParameters* parameters = stream->codecpar;
    switch (parameters->codec_id) {
        case AV_CODEC_ID_H264:
            return h264Entry(parameters);
        case AV_CODEC_ID_HEVC:
            return hevcEntry(parameters);
        case AV_CODEC_ID_VP9:
            return vp9Entry(stream);
        case AV_CODEC_ID_AV1:
            return av1Entry(stream);
        case AV_CODEC_ID_VP8:
            return "vp8";
        case AV_CODEC_ID_THEORA:
            return "theora";
        case AV_CODEC_ID_AAC:
            return aacEntry(parameters);
        case AV_CODEC_ID_MP3:
        case AV_CODEC_ID_MP2:
            // MPEG-1 audio object type indication.
            return "mp4a.6B";
        case AV_CODEC_ID_OPUS:
            return "opus";
        case AV_CODEC_ID_VORBIS:
            return "vorbis";
        case AV_CODEC_ID_FLAC:
            return "flac";
        case AV_CODEC_ID_ALAC:
            return "alac";
        case AV_CODEC_ID_AC3:
            return "ac-3";
        case AV_CODEC_ID_EAC3:
            return "ec-3";
        default:
            return {};
    }
}

}  // namespace bitmill::media::ffmpeg

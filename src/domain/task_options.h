// Option rules of every task kind: which option names a kind accepts, their
// JSON types and ranges, and the checks between options (start before end,
// codecs a container can hold). Pure logic, used to validate task bodies and
// workflow steps; workers read validated values with qualityValue() and
// dimensionValue().
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace bitmill::domain {

// Returns the canonical name of `kind` ("subtitle" becomes "subtitles"), or
// nullopt when the kind is unknown.
std::optional<std::string> canonicalKind(std::string_view kind);

// Returns every kind name, in the order that messages list them.
const std::vector<std::string>& knownKinds();

// Returns `names` joined with ", ", for "accepted: …" in messages.
std::string joinNames(const std::vector<std::string>& names);

// Validates the options of one task or workflow step of canonical kind
// `kind`. `options` is a JSON object of option names only, without "kind",
// "file_id", "workflow", "next" or null values. "url" is an option of kind
// http only. Shared options (ref, folder, filename, webhook_url) are
// accepted for every kind. Returns the options with aliases replaced by
// canonical values ("jpg" becomes "jpeg", "hevc" becomes "h265"), or
// InvalidArgument naming the option, its value and what is accepted.
//
// Ranges chosen here: video width and height 2 to 8192 pixels, image 1 to
// 16384, thumbnails 8 to 1920, a percentage from "1%" to "1000%", fps 1 to
// 120, bitrate 1000 to 1000000000 bits per second and audio_bitrate 8000 to
// 1000000.
Result<Json> validateKindOptions(std::string_view kind, const Json& options);

// Validates the steps of a workflow: a non-empty array of objects with a
// known kind (not ingest or workflow), a ref, a `next` array of steps and
// the kind's options. Returns the steps with canonical kinds and values and
// without null fields. At most 8 levels of `next` and 100 steps in all.
Result<Json> validateWorkflowSteps(const Json& steps);

// Returns an error message when `url` is not an http or https URL of at most
// 2048 characters, nullopt when it is one. `field` is the quoted field name
// for the message, e.g. `field "url"` or `option "webhook_url"`.
std::optional<std::string> httpUrlProblem(std::string_view field, std::string_view url);

// Returns a quality from 0 to 100 for an integer 0..100 or for one of
// very_low (20), low (40), medium (60), high (80) and very_high (95).
// Returns nullopt for anything else.
std::optional<int> qualityValue(const Json& value);

// A width or height option: pixels, or a percentage of the source size.
struct Dimension {
    bool percent = false;
    double value = 0;  // pixels, or percent when `percent` is true

    // Returns the size in pixels for a source of `source_pixels`, at least 1.
    int toPixels(int source_pixels) const;
};

// Parses an integer number of pixels (1 or more) or a string "N%" with N a
// positive number, and returns nullopt for anything else. Ranges are
// checked by validateKindOptions, not here.
std::optional<Dimension> dimensionValue(const Json& value);

}  // namespace bitmill::domain

// Option rules per task kind: a table of option names with a checker each,
// and the checks between options of video and audio. Messages name the
// option, its value and what is accepted.
#include "domain/task_options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "domain/delivery_path.h"

namespace bitmill::domain {

namespace {

constexpr size_t kMaxShownChars = 80;
constexpr size_t kMaxUrlChars = 2048;
constexpr size_t kMaxRefChars = 255;
constexpr size_t kMaxPromptChars = 4000;
constexpr size_t kMaxConditions = 50;
constexpr size_t kMaxHeaders = 50;
constexpr int kMaxStepDepth = 8;
constexpr int kMaxSteps = 100;
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Checks one option value and returns the value to keep (canonical for
// aliases) or an error naming `name`.
using Checker = std::function<Result<Json>(std::string_view name, const Json& value)>;

struct OptionRule {
    std::string name;
    Checker check;
};

struct KindRules {
    std::string kind;
    std::vector<OptionRule> options;  // kind-specific options, in the order messages list them
    std::vector<std::string> required;
    // Checks between options after each one passed; may be empty.
    std::function<Status(const Json& options)> check_combination;
};

// Renders a value for a message: JSON text, strings quoted, long values cut.
std::string show(const Json& value) {
    std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (text.size() > kMaxShownChars) {
        text.resize(kMaxShownChars);
        text += "...";
    }
    return text;
}

std::string quote(std::string_view name) {
    return "\"" + std::string(name) + "\"";
}

// Returns `invalid option "name": value <requirement>`.
Error invalidOption(std::string_view name, const Json& value, std::string_view requirement) {
    return Error::invalidArgument("invalid option " + quote(name) + ": " + show(value) + " " +
                                  std::string(requirement));
}

std::optional<int64_t> integerOf(const Json& value) {
    if (value.is_number_unsigned()) {
        uint64_t number = value.get<uint64_t>();
        if (number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return std::nullopt;
        }
        return static_cast<int64_t>(number);
    }
    if (value.is_number_integer()) {
        return value.get<int64_t>();
    }
    // Some clients send every number as a float; 640.0 is an integer.
    if (value.is_number_float()) {
        double number = value.get<double>();
        if (std::isfinite(number) && std::floor(number) == number && std::fabs(number) < 9e15) {
            return static_cast<int64_t>(number);
        }
    }
    return std::nullopt;
}

std::optional<double> numberOf(const Json& value) {
    if (!value.is_number()) {
        return std::nullopt;
    }
    double number = value.get<double>();
    if (!std::isfinite(number)) {
        return std::nullopt;
    }
    return number;
}

size_t countCharacters(std::string_view utf8) {
    return static_cast<size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

bool isHexDigit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool isLower(char c) {
    return c >= 'a' && c <= 'z';
}

bool isAlphanumeric(char c) {
    return isLower(c) || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// Checkers. Each returns a Checker for one kind of value.

// A string from `accepted`; `aliases` maps other spellings to accepted
// values; `unavailable` values are known but not built.
Checker oneOf(std::vector<std::string> accepted,
              std::map<std::string, std::string, std::less<>> aliases = {},
              std::vector<std::string> unavailable = {}) {
    return [=](std::string_view name, const Json& value) -> Result<Json> {
        if (value.is_string()) {
            const auto& text = value.get_ref<const std::string&>();
            if (contains(accepted, text)) {
                return value;
            }
            if (auto alias = aliases.find(text); alias != aliases.end()) {
                return Json(alias->second);
            }
            if (contains(unavailable, text)) {
                return invalidOption(
                    name, value,
                    "is not available in this build; accepted: " + joinNames(accepted));
            }
        }
        return invalidOption(name, value, "is not one of " + joinNames(accepted));
    };
}

// An integer from `low` to `high`; `unit` (may be empty) is named in the
// message.
Checker integerIn(int64_t low, int64_t high, std::string unit = {}) {
    return [=](std::string_view name, const Json& value) -> Result<Json> {
        auto number = integerOf(value);
        if (number && *number >= low && *number <= high) {
            return Json(*number);
        }
        std::string requirement =
            "must be an integer from " + std::to_string(low) + " to " + std::to_string(high);
        if (!unit.empty()) {
            requirement += " (" + unit + ")";
        }
        return invalidOption(name, value, requirement);
    };
}

// A number from `low` to `high` (both included); `description` completes
// "must be …".
Checker numberIn(double low, double high, std::string description) {
    return [=](std::string_view name, const Json& value) -> Result<Json> {
        auto number = numberOf(value);
        if (number && *number >= low && *number <= high) {
            return value;
        }
        return invalidOption(name, value, "must be " + description);
    };
}

Checker seconds() {
    return numberIn(0, kInfinity, "a number of seconds, 0 or more");
}

Checker boolean() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        if (value.is_boolean()) {
            return value;
        }
        return invalidOption(name, value, "must be true or false");
    };
}

// Pixels from `low` to `high`, or a percentage from 1% to 1000%.
Checker dimension(int low, int high) {
    return [=](std::string_view name, const Json& value) -> Result<Json> {
        auto parsed = dimensionValue(value);
        if (!parsed) {
            return invalidOption(name, value,
                                 "must be a positive integer or a percentage such as \"50%\"");
        }
        bool in_range = parsed->percent ? parsed->value >= 1 && parsed->value <= 1000
                                        : parsed->value >= low && parsed->value <= high;
        if (!in_range) {
            return invalidOption(name, value,
                                 "is out of range; accepted: " + std::to_string(low) + " to " +
                                     std::to_string(high) + " pixels or \"1%\" to \"1000%\"");
        }
        if (value.is_number_float()) {
            return Json(static_cast<int64_t>(parsed->value));
        }
        return value;
    };
}

// Pixels only, for thumbnails.
Checker pixels(int low, int high) {
    return integerIn(low, high, "pixels");
}

Checker quality() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        if (qualityValue(value)) {
            return value.is_number_float() ? Json(*integerOf(value)) : value;
        }
        return invalidOption(
            name, value,
            "must be an integer from 0 to 100 or one of very_low, low, medium, high, very_high");
    };
}

Checker background() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        if (value.is_string()) {
            const auto& text = value.get_ref<const std::string&>();
            bool hex_colour = (text.size() == 7 || text.size() == 9) && text[0] == '#' &&
                              std::all_of(text.begin() + 1, text.end(), isHexDigit);
            if (hex_colour || text == "transparent") {
                return value;
            }
        }
        return invalidOption(name, value, "must be \"#rrggbb\", \"#rrggbbaa\" or \"transparent\"");
    };
}

// "auto" or a lowercase ISO 639 code with an optional region, e.g. "en",
// "pt-BR".
Checker language() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        if (value.is_string()) {
            std::string_view text = value.get_ref<const std::string&>();
            std::string_view base = text.substr(0, text.find('-'));
            bool base_ok = (base.size() == 2 || base.size() == 3) &&
                           std::all_of(base.begin(), base.end(), isLower);
            std::string_view region =
                base.size() < text.size() ? text.substr(base.size() + 1) : std::string_view{};
            bool region_ok = base.size() == text.size() ||
                             (region.size() >= 2 && region.size() <= 8 &&
                              std::all_of(region.begin(), region.end(), isAlphanumeric));
            if (text == "auto" || (base_ok && region_ok)) {
                return value;
            }
        }
        return invalidOption(name, value,
                             "must be an ISO 639-1 language code such as \"en\", or \"auto\"");
    };
}

Checker text(size_t max_characters) {
    return [=](std::string_view name, const Json& value) -> Result<Json> {
        if (value.is_string()) {
            size_t length = countCharacters(value.get_ref<const std::string&>());
            if (length >= 1 && length <= max_characters) {
                return value;
            }
        }
        return invalidOption(name, value,
                             "must be a non-empty string of at most " +
                                 std::to_string(max_characters) + " characters");
    };
}

Checker refName() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        if (value.is_string()) {
            const auto& text = value.get_ref<const std::string&>();
            bool valid = !text.empty() && text.size() <= kMaxRefChars &&
                         std::all_of(text.begin(), text.end(), [](char c) {
                             return isAlphanumeric(c) || c == '_' || c == '.' || c == '-';
                         });
            if (valid) {
                return value;
            }
        }
        return invalidOption(name, value,
                             "must be 1 to 255 letters, digits, \"_\", \".\" or \"-\"");
    };
}

// A folder or filename, checked by `validate`, whose message already names
// the value.
Checker pathPart(Status (*validate)(std::string_view), std::string example) {
    return [=](std::string_view name, const Json& value) -> Result<Json> {
        if (!value.is_string()) {
            return invalidOption(name, value, "must be a string such as " + quote(example));
        }
        BM_RETURN_IF_ERROR(validate(value.get_ref<const std::string&>()));
        return value;
    };
}

Checker httpUrl() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        if (!value.is_string()) {
            return invalidOption(name, value, "must be an http or https URL");
        }
        if (auto problem =
                httpUrlProblem("option " + quote(name), value.get_ref<const std::string&>())) {
            return Error::invalidArgument(*problem);
        }
        return value;
    };
}

Checker notAvailable() {
    return [](std::string_view name, const Json&) -> Result<Json> {
        return Error::invalidArgument("option " + quote(name) + " is not available in this build");
    };
}

// true (the default target of -16 LUFS), false, or a target in LUFS.
Checker loudness() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        auto number = numberOf(value);
        if (value.is_boolean() || (number && *number >= -70 && *number <= -5)) {
            return value;
        }
        return invalidOption(name, value,
                             "must be true, false or a loudness target in LUFS from -70 to -5");
    };
}

const std::vector<int64_t>& sampleRates() {
    static const std::vector<int64_t> kRates = {8000,  11025, 12000, 16000, 22050,  24000, 32000,
                                                44100, 48000, 88200, 96000, 176400, 192000};
    return kRates;
}

std::string joinNumbers(const std::vector<int64_t>& numbers) {
    std::vector<std::string> names;
    for (int64_t number : numbers) {
        names.push_back(std::to_string(number));
    }
    return joinNames(names);
}

// An integer from `accepted`.
Checker integerOneOf(std::vector<int64_t> accepted) {
    return [=](std::string_view name, const Json& value) -> Result<Json> {
        auto number = integerOf(value);
        if (number && std::find(accepted.begin(), accepted.end(), *number) != accepted.end()) {
            return Json(*number);
        }
        return invalidOption(name, value, "is not one of " + joinNumbers(accepted));
    };
}

// [{prop, value}] with a string prop and a string, number or boolean value.
Checker conditionList() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        bool valid = value.is_array() && !value.empty() && value.size() <= kMaxConditions;
        for (size_t i = 0; valid && i < value.size(); ++i) {
            const Json& condition = value[i];
            valid = condition.is_object() && condition.size() == 2 && condition.contains("prop") &&
                    condition["prop"].is_string() &&
                    !condition["prop"].get_ref<const std::string&>().empty() &&
                    condition.contains("value") &&
                    (condition["value"].is_string() || condition["value"].is_number() ||
                     condition["value"].is_boolean());
        }
        if (valid) {
            return value;
        }
        return invalidOption(name, value,
                             "must be an array of 1 to 50 objects {\"prop\": string, \"value\": "
                             "string, number or boolean}");
    };
}

// An object of header names (HTTP token characters) to string values
// without line breaks.
Checker headerMap() {
    return [](std::string_view name, const Json& value) -> Result<Json> {
        auto is_token = [](char c) {
            return isAlphanumeric(c) ||
                   std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        };
        bool valid = value.is_object() && value.size() <= kMaxHeaders;
        for (auto it = value.begin(); valid && it != value.end(); ++it) {
            const std::string& header = it.key();
            valid =
                !header.empty() && std::all_of(header.begin(), header.end(), is_token) &&
                it.value().is_string() &&
                it.value().get_ref<const std::string&>().find_first_of("\r\n") == std::string::npos;
        }
        if (valid) {
            return value;
        }
        return invalidOption(name, value,
                             "must be an object of at most 50 header names to string values");
    };
}

// Checks between options.

Status checkStartBeforeEnd(const Json& options) {
    if (options.contains("start") && options.contains("end") &&
        options["start"].get<double>() >= options["end"].get<double>()) {
        return invalidOption("end", options["end"],
                             "must be greater than \"start\" (" + show(options["start"]) + ")");
    }
    return okStatus();
}

std::string stringOr(const Json& options, const char* name, const char* fallback) {
    return options.contains(name) ? options[name].get<std::string>() : fallback;
}

// Video codecs and audio codecs each container can hold in this build.
struct ContainerCodecs {
    std::vector<std::string> video;
    std::vector<std::string> audio;
};

const std::map<std::string, ContainerCodecs, std::less<>>& containerCodecs() {
    static const std::map<std::string, ContainerCodecs, std::less<>> kCodecs = {
        {"mp4", {{"h264", "h265", "vp9", "av1"}, {"aac", "mp3", "opus", "none"}}},
        {"mov", {{"h264", "h265"}, {"aac", "mp3", "none"}}},
        {"mkv", {{"h264", "h265", "vp9", "av1"}, {"aac", "mp3", "opus", "none"}}},
        {"webm", {{"vp9", "av1"}, {"opus", "none"}}},
    };
    return kCodecs;
}

Status checkVideoCombination(const Json& options) {
    BM_RETURN_IF_ERROR(checkStartBeforeEnd(options));

    std::string format = stringOr(options, "format", "mp4");
    const ContainerCodecs& codecs = containerCodecs().find(format)->second;
    for (auto [option, accepted] :
         {std::pair{"codec", &codecs.video}, std::pair{"audio_codec", &codecs.audio}}) {
        if (options.contains(option) && !contains(*accepted, options[option].get<std::string>())) {
            return invalidOption(option, options[option],
                                 "cannot be used with format " + quote(format) +
                                     "; accepted: " + joinNames(*accepted));
        }
    }
    return okStatus();
}

Status checkAudioCombination(const Json& options) {
    BM_RETURN_IF_ERROR(checkStartBeforeEnd(options));

    // MP3 (MPEG-1/2 layer III) stops at 48 kHz and Opus encodes only these
    // rates; the other formats take every rate of sampleRates().
    static const std::map<std::string, std::vector<int64_t>, std::less<>> kFormatRates = {
        {"mp3", {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}},
        {"opus", {8000, 12000, 16000, 24000, 48000}},
    };
    std::string format = stringOr(options, "format", "mp3");
    auto rates = kFormatRates.find(format);
    if (options.contains("sample_rate") && rates != kFormatRates.end() &&
        !std::count(rates->second.begin(), rates->second.end(),
                    options["sample_rate"].get<int64_t>())) {
        return invalidOption("sample_rate", options["sample_rate"],
                             "cannot be used with format " + quote(format) +
                                 "; accepted: " + joinNumbers(rates->second));
    }
    return okStatus();
}

// The option table of every kind.

std::vector<OptionRule> videoOptions() {
    return {
        {"width", dimension(2, 8192)},
        {"height", dimension(2, 8192)},
        {"fit", oneOf({"fill", "cover", "contain"})},
        {"position", oneOf({"center", "top", "bottom", "left", "right", "top_left", "top_right",
                            "bottom_left", "bottom_right"})},
        {"background", background()},
        {"fps", numberIn(1, 120, "a number from 1 to 120")},
        {"format", oneOf({"mp4", "webm", "mov", "mkv"}, {}, {"hls"})},
        {"codec", oneOf({"h264", "h265", "vp9", "av1"}, {{"hevc", "h265"}, {"avc", "h264"}})},
        {"audio_codec", oneOf({"aac", "opus", "mp3", "none"})},
        {"quality", quality()},
        {"bitrate", integerIn(1000, 1'000'000'000, "bits per second")},
        {"audio_bitrate", integerIn(8000, 1'000'000, "bits per second")},
        {"start", seconds()},
        {"end", seconds()},
        {"layers", notAvailable()},
    };
}

std::vector<OptionRule> imageOptions() {
    return {
        {"width", dimension(1, 16384)},
        {"height", dimension(1, 16384)},
        {"fit", oneOf({"fill", "cover", "contain"})},
        {"position", oneOf({"center", "top", "bottom", "left", "right", "top_left", "top_right",
                            "bottom_left", "bottom_right", "attention", "entropy"})},
        {"background", background()},
        {"format", oneOf({"jpeg", "png", "webp", "avif", "gif"}, {{"jpg", "jpeg"}})},
        {"quality", quality()},
        {"start", seconds()},
        {"layers", notAvailable()},
    };
}

std::vector<OptionRule> audioOptions() {
    return {
        {"format", oneOf({"mp3", "aac", "wav", "ogg", "opus", "flac"})},
        {"quality", quality()},
        {"bitrate", integerIn(8000, 1'000'000, "bits per second")},
        {"channels", integerOneOf({1, 2})},
        {"sample_rate", integerOneOf(sampleRates())},
        {"start", seconds()},
        {"end", seconds()},
        {"normalize", loudness()},
    };
}

const std::vector<KindRules>& kindTable() {
    static const std::vector<KindRules> kTable = {
        {"ingest", {}, {}, {}},
        {"video", videoOptions(), {}, checkVideoCombination},
        {"image", imageOptions(), {}, {}},
        {"audio", audioOptions(), {}, checkAudioCombination},
        {"thumbnails",
         {
             {"interval", numberIn(0.1, 86400, "a number of seconds from 0.1 to 86400")},
             {"count", integerIn(1, 1000)},
             {"width", pixels(8, 1920)},
             {"format", oneOf({"jpeg", "webp"}, {{"jpg", "jpeg"}})},
             {"columns", integerIn(1, 100)},
         },
         {},
         {}},
        {"subtitles",
         {
             {"format", oneOf({"vtt", "srt"})},
             {"language", language()},
             {"speakers", boolean()},
             {"max_line_length", integerIn(10, 200, "characters")},
             {"max_lines", integerIn(1, 10)},
         },
         {},
         {}},
        {"chapters",
         {
             {"format", oneOf({"vtt", "json"})},
             {"max_chapters", integerIn(1, 100)},
             {"min_duration", numberIn(0, 86400, "a number of seconds from 0 to 86400")},
         },
         {},
         {}},
        {"speech", {{"speakers", boolean()}, {"language", language()}}, {}, {}},
        {"nsfw", {{"threshold", numberIn(0, 1, "a number from 0 to 1")}}, {}, {}},
        {"tags",
         {{"max", integerIn(1, 100)}, {"min_confidence", numberIn(0, 1, "a number from 0 to 1")}},
         {},
         {}},
        {"description", {{"language", language()}}, {}, {}},
        {"prompt", {{"prompt", text(kMaxPromptChars)}}, {"prompt"}, {}},
        {"outline", {}, {}, {}},
        {"workflow", {}, {}, {}},
        {"conditions", {{"conditions", conditionList()}}, {"conditions"}, {}},
        {"http",
         {
             {"url", httpUrl()},
             {"method", oneOf({"POST", "PUT", "PATCH"},
                              {{"post", "POST"}, {"put", "PUT"}, {"patch", "PATCH"}})},
             {"headers", headerMap()},
         },
         {"url"},
         {}},
    };
    return kTable;
}

const std::vector<OptionRule>& sharedOptions() {
    static const std::vector<OptionRule> kShared = {
        {"ref", refName()},
        {"folder", pathPart(validateFolder, "videos/2025")},
        {"filename", pathPart(validateFilename, "clip.mp4")},
        {"webhook_url", httpUrl()},
    };
    return kShared;
}

const KindRules* findKind(std::string_view kind) {
    for (const KindRules& rules : kindTable()) {
        if (rules.kind == kind) {
            return &rules;
        }
    }
    return nullptr;
}

const OptionRule* findRule(const std::vector<OptionRule>& rules, std::string_view name) {
    for (const OptionRule& rule : rules) {
        if (rule.name == name) {
            return &rule;
        }
    }
    return nullptr;
}

std::string acceptedOptionNames(const KindRules& rules) {
    std::vector<std::string> names;
    for (const auto* list : {&rules.options, &sharedOptions()}) {
        for (const OptionRule& rule : *list) {
            names.push_back(rule.name);
        }
    }
    return joinNames(names);
}

std::vector<std::string> stepKinds() {
    std::vector<std::string> kinds;
    for (const std::string& kind : knownKinds()) {
        if (kind != "ingest" && kind != "workflow") {
            kinds.push_back(kind);
        }
    }
    return kinds;
}

Error invalidStep(const std::string& where, const std::string& problem) {
    return Error::invalidArgument("invalid workflow step " + where + ": " + problem);
}

Result<Json> validateSteps(const Json& steps, const std::string& where, int depth, int& step_count);

Result<Json> validateStep(const Json& step, const std::string& where, int depth, int& step_count) {
    if (!step.is_object()) {
        return invalidStep(where, "must be an object with a \"kind\"");
    }
    if (!step.contains("kind") || step["kind"].is_null()) {
        return invalidStep(where, "missing \"kind\"; accepted: " + joinNames(stepKinds()));
    }
    const Json& kind_value = step["kind"];
    auto kind = kind_value.is_string() ? canonicalKind(kind_value.get_ref<const std::string&>())
                                       : std::nullopt;
    if (!kind || !contains(stepKinds(), *kind)) {
        return invalidStep(
            where, "unknown kind " + show(kind_value) + "; accepted: " + joinNames(stepKinds()));
    }

    Json options = Json::object();
    for (const auto& [name, value] : step.items()) {
        if (name != "kind" && name != "next" && !value.is_null()) {
            options[name] = value;
        }
    }
    auto validated = validateKindOptions(*kind, options);
    if (!validated.ok()) {
        return invalidStep(where + " (kind " + *kind + ")", validated.error().message());
    }

    Json result = Json::object();
    result["kind"] = *kind;
    result.update(*validated);
    if (step.contains("next") && !step["next"].is_null()) {
        if (depth >= kMaxStepDepth) {
            return invalidStep(where, "\"next\" is nested deeper than 8 levels");
        }
        BM_ASSIGN_OR_RETURN(result["next"],
                            validateSteps(step["next"], where + ".next", depth + 1, step_count));
    }
    return result;
}

Result<Json> validateSteps(const Json& steps, const std::string& where, int depth,
                           int& step_count) {
    if (!steps.is_array()) {
        return invalidStep(where, "must be an array of steps, got " + show(steps));
    }
    Json result = Json::array();
    for (size_t i = 0; i < steps.size(); ++i) {
        if (++step_count > kMaxSteps) {
            return Error::invalidArgument("invalid field \"workflow\": more than 100 steps");
        }
        std::string step_where = where + "[" + std::to_string(i) + "]";
        BM_ASSIGN_OR_RETURN(Json step, validateStep(steps[i], step_where, depth, step_count));
        result.push_back(std::move(step));
    }
    return result;
}

}  // namespace

std::optional<std::string> canonicalKind(std::string_view kind) {
    if (kind == "subtitle") {
        return "subtitles";
    }
    if (findKind(kind) == nullptr) {
        return std::nullopt;
    }
    return std::string(kind);
}

const std::vector<std::string>& knownKinds() {
    static const std::vector<std::string> kKinds = [] {
        std::vector<std::string> kinds;
        for (const KindRules& rules : kindTable()) {
            kinds.push_back(rules.kind);
        }
        return kinds;
    }();
    return kKinds;
}

std::string joinNames(const std::vector<std::string>& names) {
    std::string joined;
    for (const std::string& name : names) {
        if (!joined.empty()) {
            joined += ", ";
        }
        joined += name;
    }
    return joined;
}

Result<Json> validateKindOptions(std::string_view kind, const Json& options) {
    const KindRules* rules = findKind(kind);
    if (rules == nullptr) {
        return Error::invalidArgument("unknown kind " + quote(kind) +
                                      "; accepted: " + joinNames(knownKinds()));
    }

    Json result = Json::object();
    for (const auto& [name, value] : options.items()) {
        const OptionRule* rule = findRule(rules->options, name);
        if (rule == nullptr) {
            rule = findRule(sharedOptions(), name);
        }
        if (rule == nullptr) {
            return Error::invalidArgument("unknown option " + quote(name) + " for kind " +
                                          rules->kind +
                                          "; accepted: " + acceptedOptionNames(*rules));
        }
        BM_ASSIGN_OR_RETURN(result[name], rule->check(name, value));
    }

    for (const std::string& name : rules->required) {
        if (!result.contains(name)) {
            return Error::invalidArgument("missing option " + quote(name) + " for kind " +
                                          rules->kind);
        }
    }
    if (rules->check_combination) {
        BM_RETURN_IF_ERROR(rules->check_combination(result));
    }
    return result;
}

Result<Json> validateWorkflowSteps(const Json& steps) {
    if (!steps.is_array() || steps.empty()) {
        return Error::invalidArgument("invalid field \"workflow\": " + show(steps) +
                                      " must be a non-empty array of steps");
    }
    int step_count = 0;
    return validateSteps(steps, "workflow", 0, step_count);
}

std::optional<std::string> httpUrlProblem(std::string_view field, std::string_view url) {
    std::string prefix = "invalid " + std::string(field) + ": ";
    if (url.size() > kMaxUrlChars) {
        return prefix + "must be at most 2048 characters, got " + std::to_string(url.size());
    }
    std::string lower(url.substr(0, 8));
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    size_t scheme_length = lower.starts_with("https://") ? 8 : lower.starts_with("http://") ? 7 : 0;
    bool has_host = scheme_length > 0 && url.size() > scheme_length && url[scheme_length] != '/' &&
                    url[scheme_length] != '?' && url[scheme_length] != '#';
    bool clean = std::none_of(url.begin(), url.end(), [](char c) {
        auto byte = static_cast<unsigned char>(c);
        return byte <= 0x20 || byte == 0x7f;
    });
    if (!has_host || !clean) {
        return prefix + show(Json(std::string(url))) + " must be an http or https URL";
    }
    return std::nullopt;
}

std::optional<int> qualityValue(const Json& value) {
    if (value.is_string()) {
        static const std::map<std::string, int, std::less<>> kWords = {
            {"very_low", 20}, {"low", 40}, {"medium", 60}, {"high", 80}, {"very_high", 95}};
        auto word = kWords.find(value.get_ref<const std::string&>());
        if (word == kWords.end()) {
            return std::nullopt;
        }
        return word->second;
    }
    auto number = integerOf(value);
    if (!number || *number < 0 || *number > 100) {
        return std::nullopt;
    }
    return static_cast<int>(*number);
}

int Dimension::toPixels(int source_pixels) const {
    double pixel_count = percent ? source_pixels * value / 100.0 : value;
    return std::max(1, static_cast<int>(std::lround(pixel_count)));
}

std::optional<Dimension> dimensionValue(const Json& value) {
    if (value.is_string()) {
        std::string_view text = value.get_ref<const std::string&>();
        if (text.size() < 2 || text.back() != '%') {
            return std::nullopt;
        }
        std::string_view number_text = text.substr(0, text.size() - 1);
        // Digits with at most one '.', neither first nor last: "50", "33.3".
        bool well_formed = std::all_of(number_text.begin(), number_text.end(),
                                       [](char c) { return (c >= '0' && c <= '9') || c == '.'; }) &&
                           std::count(number_text.begin(), number_text.end(), '.') <= 1 &&
                           number_text.front() != '.' && number_text.back() != '.' &&
                           number_text.size() <= 12;
        if (!well_formed) {
            return std::nullopt;
        }
        double percent = 0;
        auto parsed =
            std::from_chars(number_text.data(), number_text.data() + number_text.size(), percent);
        if (parsed.ec != std::errc() || percent <= 0) {
            return std::nullopt;
        }
        return Dimension{true, percent};
    }
    auto number = integerOf(value);
    if (!number || *number < 1) {
        return std::nullopt;
    }
    return Dimension{false, static_cast<double>(*number)};
}

}  // namespace bitmill::domain

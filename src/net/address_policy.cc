// Address classification tables and allow-list matching for URL inputs.
#include "net/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace bitmill::net {

namespace {

struct RangeRule {
    const char* network;
    int prefix_length;
    AddressRange range;
};

// Checked in order, so a more specific rule comes before the wider one that contains it.
constexpr RangeRule kIpv4Rules[] = {
    {"169.254.169.254", 32, AddressRange::Metadata},  // AWS, GCP, Azure, OpenStack, ...
    {"100.100.100.200", 32, AddressRange::Metadata},  // Alibaba Cloud
    {"168.63.129.16", 32, AddressRange::Metadata},    // Azure platform endpoint, public space
    {"0.0.0.0", 8, AddressRange::Unspecified},
    {"10.0.0.0", 8, AddressRange::Private},
    {"100.64.0.0", 10, AddressRange::SharedCgnat},
    {"127.0.0.0", 8, AddressRange::Loopback},
    {"169.254.0.0", 16, AddressRange::LinkLocal},
    {"172.16.0.0", 12, AddressRange::Private},
    {"192.0.0.0", 24, AddressRange::Reserved},    // IETF protocol assignments
    {"192.0.2.0", 24, AddressRange::Reserved},    // documentation (TEST-NET-1)
    {"192.88.99.0", 24, AddressRange::Reserved},  // former 6to4 relay anycast
    {"192.168.0.0", 16, AddressRange::Private},
    {"198.18.0.0", 15, AddressRange::Reserved},    // benchmarking
    {"198.51.100.0", 24, AddressRange::Reserved},  // documentation (TEST-NET-2)
    {"203.0.113.0", 24, AddressRange::Reserved},   // documentation (TEST-NET-3)
    {"224.0.0.0", 4, AddressRange::Multicast},
    {"255.255.255.255", 32, AddressRange::Broadcast},
    {"240.0.0.0", 4, AddressRange::Reserved},
};

// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) are handled before this table because they embed an
// IPv4 address. Everything outside global unicast 2000::/3 that no rule names is Reserved.
constexpr RangeRule kIpv6Rules[] = {
    {"fd00:ec2::254", 128, AddressRange::Metadata},  // AWS over IPv6
    {"::", 128, AddressRange::Unspecified},
    {"::1", 128, AddressRange::Loopback},
    {"fc00::", 7, AddressRange::UniqueLocal},
    {"fe80::", 10, AddressRange::LinkLocal},
    {"fec0::", 10, AddressRange::Private},  // deprecated site-local
    {"ff00::", 8, AddressRange::Multicast},
    {"2001::", 23, AddressRange::Reserved},      // IETF protocol assignments, Teredo included
    {"2001:db8::", 32, AddressRange::Reserved},  // documentation
    {"3fff::", 20, AddressRange::Reserved},      // documentation
};

bool isInPrefix(const IpAddress& address, const IpAddress& network, int prefix_length) {
    if (address.is_v4 != network.is_v4) {
        return false;
    }
    const int full_bytes = prefix_length / 8;
    if (!std::equal(address.bytes.begin(), address.bytes.begin() + full_bytes,
                    network.bytes.begin())) {
        return false;
    }
    const int remaining_bits = prefix_length % 8;
    if (remaining_bits == 0) {
        return true;
    }
    const auto mask = static_cast<uint8_t>(0xff << (8 - remaining_bits));
    return (address.bytes[full_bytes] & mask) == (network.bytes[full_bytes] & mask);
}

IpAddress parseRuleNetwork(const char* text) {
    std::optional<IpAddress> network = parseIpAddress(text);
    assert(network.has_value());
    return *network;
}

struct ParsedRule {
    IpAddress network;
    int prefix_length;
    AddressRange range;
};

template <size_t N>
std::vector<ParsedRule> parseRules(const RangeRule (&rules)[N]) {
    std::vector<ParsedRule> parsed;
    for (const RangeRule& rule : rules) {
        parsed.push_back({parseRuleNetwork(rule.network), rule.prefix_length, rule.range});
    }
    return parsed;
}

std::optional<AddressRange> matchRules(const IpAddress& address,
                                       const std::vector<ParsedRule>& rules) {
    for (const ParsedRule& rule : rules) {
        if (isInPrefix(address, rule.network, rule.prefix_length)) {
            return rule.range;
        }
    }
    return std::nullopt;
}

IpAddress ipv4FromBytes(const uint8_t* bytes) {
    IpAddress address;
    address.is_v4 = true;
    std::copy(bytes, bytes + 4, address.bytes.begin());
    return address;
}

// Returns the IPv4 address that a NAT64 or 6to4 address carries, if it is one.
std::optional<IpAddress> embeddedIpv4(const IpAddress& address) {
    static const IpAddress kNat64 = parseRuleNetwork("64:ff9b::");
    static const IpAddress kSixToFour = parseRuleNetwork("2002::");
    if (isInPrefix(address, kNat64, 96)) {
        return ipv4FromBytes(address.bytes.data() + 12);
    }
    if (isInPrefix(address, kSixToFour, 16)) {
        return ipv4FromBytes(address.bytes.data() + 2);
    }
    return std::nullopt;
}

bool isValidHostName(std::string_view host) {
    if (host.empty() || host.size() > 253) {
        return false;
    }
    return std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
}

}  // namespace

std::string IpAddress::toString() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(is_v4 ? AF_INET : AF_INET6, bytes.data(), text, sizeof(text));
    return text;
}

std::optional<IpAddress> parseIpAddress(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        text = text.substr(1, text.size() - 2);
    }
    if (const size_t zone = text.find('%'); zone != std::string_view::npos) {
        text = text.substr(0, zone);
    }
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    const std::string terminated(text);
    IpAddress address;
    if (inet_pton(AF_INET, terminated.c_str(), address.bytes.data()) == 1) {
        address.is_v4 = true;
        return address;
    }
    if (inet_pton(AF_INET6, terminated.c_str(), address.bytes.data()) != 1) {
        return std::nullopt;
    }

    // ::ffff:a.b.c.d reaches the IPv4 host a.b.c.d, so it is that address.
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(std::begin(kMappedPrefix), std::end(kMappedPrefix), address.bytes.begin())) {
        return ipv4FromBytes(address.bytes.data() + 12);
    }
    return address;
}

std::optional<IpAddress> ipAddressFromSockaddr(const sockaddr* address) {
    if (address->sa_family == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
        return ipv4FromBytes(reinterpret_cast<const uint8_t*>(&v4->sin_addr));
    }
    if (address->sa_family == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
        char text[INET6_ADDRSTRLEN] = {};
        inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
        return parseIpAddress(text);
    }
    return std::nullopt;
}

AddressRange classifyAddress(const IpAddress& address) {
    static const std::vector<ParsedRule> kParsedIpv4Rules = parseRules(kIpv4Rules);
    static const std::vector<ParsedRule> kParsedIpv6Rules = parseRules(kIpv6Rules);
    if (address.is_v4) {
        return matchRules(address, kParsedIpv4Rules).value_or(AddressRange::Public);
    }
    if (std::optional<IpAddress> inner = embeddedIpv4(address)) {
        return classifyAddress(*inner);
    }
    if (std::optional<AddressRange> range = matchRules(address, kParsedIpv6Rules)) {
        return *range;
    }
    const bool is_global_unicast = (address.bytes[0] & 0xe0) == 0x20;
    return is_global_unicast ? AddressRange::Public : AddressRange::Reserved;
}

std::string_view describeAddressRange(AddressRange range) {
    switch (range) {
        case AddressRange::Public:
            return "a public address";
        case AddressRange::Unspecified:
            return "an unspecified (this-network) address";
        case AddressRange::Loopback:
            return "a loopback address";
        case AddressRange::Private:
            return "a private address";
        case AddressRange::SharedCgnat:
            return "a shared (carrier-grade NAT) address";
        case AddressRange::LinkLocal:
            return "a link-local address";
        case AddressRange::UniqueLocal:
            return "a unique-local address";
        case AddressRange::Multicast:
            return "a multicast address";
        case AddressRange::Broadcast:
            return "a broadcast address";
        case AddressRange::Reserved:
            return "a reserved address";
        case AddressRange::Metadata:
            return "a cloud metadata address";
    }
    return "an unknown address";
}

std::string normalizeHost(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (!host.empty() && host.back() == '.') {
        host.remove_suffix(1);
    }
    std::string lowered(host);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lowered;
}

Result<AllowList::Cidr> AllowList::parseRange(std::string_view entry, const IpAddress& network,
                                              std::optional<std::string_view> prefix_text) {
    // An IPv4-mapped network was stored as IPv4, so its prefix loses the 96 mapped bits.
    const bool was_mapped = network.is_v4 && entry.find(':') != std::string_view::npos;
    if (!prefix_text) {
        return Cidr{network, network.bitCount()};
    }
    const int min_length = was_mapped ? 96 : 0;
    const int max_length = was_mapped ? 128 : network.bitCount();
    int prefix_length = -1;
    const char* end = prefix_text->data() + prefix_text->size();
    auto [parsed_end, error] = std::from_chars(prefix_text->data(), end, prefix_length);
    if (prefix_text->empty() || error != std::errc() || parsed_end != end ||
        prefix_length < min_length || prefix_length > max_length) {
        return Error::invalidArgument(
            fmt::format("invalid url allow-list entry '{}': prefix length must be {}-{}", entry,
                        min_length, max_length));
    }
    return Cidr{network, was_mapped ? prefix_length - 96 : prefix_length};
}

Result<AllowList> AllowList::create(const std::vector<std::string>& entries) {
    AllowList allow_list;
    for (const std::string& entry : entries) {
        std::string_view text = entry;
        std::optional<std::string_view> prefix_text;
        if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
            prefix_text = text.substr(slash + 1);
            text = text.substr(0, slash);
        }
        const std::optional<IpAddress> network = parseIpAddress(text);
        if (network) {
            BM_ASSIGN_OR_RETURN(Cidr range, parseRange(entry, *network, prefix_text));
            allow_list.ranges_.push_back(range);
        } else if (!prefix_text && isValidHostName(text)) {
            allow_list.hosts_.push_back(normalizeHost(text));
        } else {
            return Error::invalidArgument(fmt::format(
                "invalid url allow-list entry '{}': expected a host name, an IP address or a "
                "CIDR range such as 10.0.0.0/8",
                entry));
        }
    }
    return allow_list;
}

bool AllowList::allows(std::string_view host, const IpAddress& address) const {
    if (classifyAddress(address) == AddressRange::Metadata) {
        return std::any_of(ranges_.begin(), ranges_.end(), [&](const Cidr& range) {
            return range.prefix_length == address.bitCount() && range.network == address;
        });
    }
    const std::string normalized_host = normalizeHost(host);
    if (std::find(hosts_.begin(), hosts_.end(), normalized_host) != hosts_.end()) {
        return true;
    }
    return std::any_of(ranges_.begin(), ranges_.end(), [&](const Cidr& range) {
        return isInPrefix(address, range.network, range.prefix_length);
    });
}

}  // namespace bitmill::net

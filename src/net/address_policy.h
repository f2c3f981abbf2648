// IP address ranges that URL inputs may not reach (loopback, private, link-local, metadata, ...)
// and the operator's allow-list that lets on-premises sources through anyway.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace bitmill::net {

// An IPv4 or IPv6 address in network byte order. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
// are stored as IPv4, so both spellings of one address classify and compare the same.
struct IpAddress {
    bool is_v4 = false;
    std::array<uint8_t, 16> bytes{};  // an IPv4 address uses the first 4 bytes

    int bitCount() const { return is_v4 ? 32 : 128; }
    std::string toString() const;

    friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// Parses a numeric IPv4 (dotted quad) or IPv6 address. Accepts IPv6 in brackets ("[::1]") and
// with a zone ("fe80::1%eth0", the zone is dropped). Returns nullopt for anything else,
// host names included.
std::optional<IpAddress> parseIpAddress(std::string_view text);

// Returns the address of an AF_INET or AF_INET6 socket address, nullopt for other families.
std::optional<IpAddress> ipAddressFromSockaddr(const sockaddr* address);

// Address ranges, in the words of the IANA special-purpose address registries.
enum class AddressRange {
    Public,
    Unspecified,  // 0.0.0.0/8 ("this network") and ::
    Loopback,
    Private,      // 10/8, 172.16/12, 192.168/16
    SharedCgnat,  // 100.64/10
    LinkLocal,
    UniqueLocal,  // fc00::/7
    Multicast,
    Broadcast,
    Reserved,  // documentation, benchmarking, future use, unallocated IPv6
    Metadata,  // cloud instance metadata endpoints
};

// Returns the range that `address` falls in. Addresses that embed an IPv4 address (NAT64
// 64:ff9b::/96, 6to4 2002::/16) take the range of the embedded address.
AddressRange classifyAddress(const IpAddress& address);

// Returns a phrase for messages, e.g. "a loopback address".
std::string_view describeAddressRange(AddressRange range);

// Hosts and CIDR ranges that URL inputs may reach although their addresses are blocked.
// Entries are host names ("media.internal", matched case-insensitively against the URL host),
// addresses ("10.1.2.3", "[::1]") or CIDR ranges ("10.0.0.0/8", "fd00::/8").
// A cloud metadata address passes only through an entry that is exactly that address, so
// allowing "169.254.0.0/16" or a host name does not open 169.254.169.254.
// Immutable after create(), so it is safe to share between threads.
class AllowList {
  public:
    // Returns InvalidArgument naming the first entry that is not a host name, address or
    // CIDR range.
    static Result<AllowList> create(const std::vector<std::string>& entries);

    AllowList() = default;

    // True when a connection to `address`, reached through the URL host `host`, is
    // permitted by an entry.
    bool allows(std::string_view host, const IpAddress& address) const;

  private:
    struct Cidr {
        IpAddress network;
        int prefix_length = 0;
    };

    // Parses the prefix of a CIDR entry whose address part is `network`.
    static Result<Cidr> parseRange(std::string_view entry, const IpAddress& network,
                                   std::optional<std::string_view> prefix_text);

    std::vector<std::string> hosts_;  // lowercase, no trailing dot
    std::vector<Cidr> ranges_;
};

// Returns `host` lowercased, without IPv6 brackets or a trailing dot, for comparisons.
std::string normalizeHost(std::string_view host);

}  // namespace bitmill::net

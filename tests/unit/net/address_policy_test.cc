// Checks address parsing, range classification, the allow-list and redirect URL resolution.
#include "net/address_policy.h"

#include <gtest/gtest.h>

#include "net/fetch_url.h"

namespace bitmill::net {
namespace {

IpAddress address(std::string_view text) {
    std::optional<IpAddress> parsed = parseIpAddress(text);
    EXPECT_TRUE(parsed.has_value()) << text;
    return parsed.value_or(IpAddress{});
}

TEST(AddressPolicyTest, ParsesBothFamiliesAndBrackets) {
    EXPECT_TRUE(address("10.1.2.3").is_v4);
    EXPECT_FALSE(address("2001:4860::1").is_v4);
    EXPECT_EQ(address("[::1]"), address("::1"));
    EXPECT_EQ(address("fe80::1%eth0"), address("fe80::1"));
    EXPECT_FALSE(parseIpAddress("example.com").has_value());
    EXPECT_FALSE(parseIpAddress("127.1").has_value());
    EXPECT_FALSE(parseIpAddress("").has_value());
}

TEST(AddressPolicyTest, StoresMappedIpv6AsIpv4) {
    IpAddress mapped = address("::ffff:127.0.0.1");
    EXPECT_TRUE(mapped.is_v4);
    EXPECT_EQ(mapped, address("127.0.0.1"));
    EXPECT_EQ(mapped.toString(), "127.0.0.1");
}

TEST(AddressPolicyTest, ClassifiesNamedRanges) {
    struct Case {
        const char* text;
        AddressRange range;
    };
    const Case cases[] = {
        {"127.0.0.1", AddressRange::Loopback},        {"::1", AddressRange::Loopback},
        {"10.0.0.1", AddressRange::Private},          {"100.64.0.1", AddressRange::SharedCgnat},
        {"169.254.1.1", AddressRange::LinkLocal},     {"169.254.169.254", AddressRange::Metadata},
        {"fd00:ec2::254", AddressRange::Metadata},    {"100.100.100.200", AddressRange::Metadata},
        {"fd12::1", AddressRange::UniqueLocal},       {"ff02::1", AddressRange::Multicast},
        {"255.255.255.255", AddressRange::Broadcast}, {"240.1.2.3", AddressRange::Reserved},
        {"0.0.0.0", AddressRange::Unspecified},       {"64:ff9b::7f00:1", AddressRange::Loopback},
        {"2002:a00:1::", AddressRange::Private},      {"93.184.216.34", AddressRange::Public},
    };
    for (const Case& test_case : cases) {
        EXPECT_EQ(classifyAddress(address(test_case.text)), test_case.range) << test_case.text;
    }
}

TEST(AddressPolicyTest, DescribesRangesForMessages) {
    EXPECT_EQ(describeAddressRange(AddressRange::Loopback), "a loopback address");
    EXPECT_EQ(describeAddressRange(AddressRange::Metadata), "a cloud metadata address");
}

TEST(AllowListTest, RejectsInvalidEntries) {
    const char* invalid[] = {"10.0.0.0/33",      "fe80::/129",         "10.0.0.0/x",
                             "10.0.0.0/",        "*.internal",         "media internal",
                             "media.internal/8", "::ffff:10.0.0.0/64", "http://media.internal"};
    for (const char* entry : invalid) {
        Result<AllowList> result = AllowList::create({entry});
        ASSERT_FALSE(result.ok()) << entry;
        EXPECT_EQ(result.error().code(), ErrorCode::InvalidArgument) << entry;
        EXPECT_NE(result.error().message().find(entry), std::string::npos)
            << result.error().message();
    }
}

TEST(AllowListTest, MatchesCidrRanges) {
    Result<AllowList> allow_list = AllowList::create({"10.0.0.0/8", "[::1]", "fd00::/8"});
    ASSERT_TRUE(allow_list.ok()) << allow_list.error().message();
    EXPECT_TRUE(allow_list->allows("a.example", address("10.200.3.4")));
    EXPECT_FALSE(allow_list->allows("a.example", address("11.0.0.1")));
    EXPECT_FALSE(allow_list->allows("a.example", address("192.168.0.1")));
    EXPECT_TRUE(allow_list->allows("a.example", address("::1")));
    EXPECT_FALSE(allow_list->allows("a.example", address("::2")));
    EXPECT_TRUE(allow_list->allows("a.example", address("fd12:3456::1")));
    EXPECT_FALSE(allow_list->allows("a.example", address("fc00::1")));
}

TEST(AllowListTest, MatchesHostNamesCaseInsensitively) {
    Result<AllowList> allow_list = AllowList::create({"Media.Internal"});
    ASSERT_TRUE(allow_list.ok()) << allow_list.error().message();
    EXPECT_TRUE(allow_list->allows("media.internal", address("10.0.0.5")));
    EXPECT_TRUE(allow_list->allows("MEDIA.INTERNAL.", address("192.168.7.7")));
    EXPECT_FALSE(allow_list->allows("other.internal", address("10.0.0.5")));
    EXPECT_FALSE(allow_list->allows("sub.media.internal", address("10.0.0.5")));
}

TEST(AllowListTest, TreatsMappedAndPlainIpv4Alike) {
    Result<AllowList> plain = AllowList::create({"127.0.0.1/32"});
    ASSERT_TRUE(plain.ok());
    EXPECT_TRUE(plain->allows("x", address("::ffff:127.0.0.1")));

    Result<AllowList> mapped = AllowList::create({"::ffff:10.0.0.0/104"});
    ASSERT_TRUE(mapped.ok()) << mapped.error().message();
    EXPECT_TRUE(mapped->allows("x", address("10.9.8.7")));
    EXPECT_FALSE(mapped->allows("x", address("11.0.0.1")));
}

TEST(AllowListTest, OpensMetadataOnlyThroughExactAddress) {
    Result<AllowList> wide = AllowList::create({"169.254.0.0/16", "0.0.0.0/0", "metadata.local"});
    ASSERT_TRUE(wide.ok());
    EXPECT_TRUE(wide->allows("x", address("169.254.1.1")));
    EXPECT_FALSE(wide->allows("x", address("169.254.169.254")));
    EXPECT_FALSE(wide->allows("metadata.local", address("169.254.169.254")));

    Result<AllowList> exact = AllowList::create({"169.254.169.254"});
    ASSERT_TRUE(exact.ok());
    EXPECT_TRUE(exact->allows("x", address("169.254.169.254")));
    EXPECT_FALSE(exact->allows("x", address("100.100.100.200")));
}

TEST(FetchUrlTest, ResolvesRelativeAndAbsoluteRedirects) {
    Result<FetchUrl> base = parseFetchUrl("http://a.example/chain/5?sig=secret");
    ASSERT_TRUE(base.ok()) << base.error().message();
    EXPECT_EQ(base->redacted, "http://a.example/chain/5");

    struct Case {
        const char* location;
        const char* expected;
    };
    const Case cases[] = {
        {"4", "http://a.example/chain/4"},
        {"/top", "http://a.example/top"},
        {"../x?y=1", "http://a.example/x?y=1"},
        {"//b.example/p", "http://b.example/p"},
        {"https://c.example:8443/q", "https://c.example:8443/q"},
        {"http://[::1]:9/", "http://[::1]:9/"},
    };
    for (const Case& test_case : cases) {
        Result<FetchUrl> next = resolveRedirect(*base, test_case.location);
        ASSERT_TRUE(next.ok()) << test_case.location << ": " << next.error().message();
        EXPECT_EQ(next->url, test_case.expected);
    }
}

TEST(FetchUrlTest, RejectsRedirectsToOtherSchemes) {
    Result<FetchUrl> base = parseFetchUrl("https://a.example/x");
    ASSERT_TRUE(base.ok());
    const char* locations[] = {"file:///etc/passwd", "ftp://a.example/x", "gopher://a.example/",
                               "http:///x", "javascript:alert(1)"};
    for (const char* location : locations) {
        Result<FetchUrl> next = resolveRedirect(*base, location);
        ASSERT_FALSE(next.ok()) << location;
        EXPECT_EQ(next.error().code(), ErrorCode::InvalidArgument);
        EXPECT_NE(next.error().message().find("invalid redirect url"), std::string::npos)
            << next.error().message();
    }
}

TEST(FetchUrlTest, RedactsUserinfoQueryAndFragment) {
    EXPECT_EQ(redactUrl("https://user:pw@host.example:8080/a/b?sig=1#frag"),
              "https://host.example:8080/a/b");
    EXPECT_EQ(redactUrl("not a url?token=1"), "not a url");
    EXPECT_LE(redactUrl("http://h/" + std::string(5000, 'a')).size(), 210u);

    Result<FetchUrl> parsed = parseFetchUrl("https://user:pw@host.example/a?sig=1");
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->redacted, "https://host.example/a");
    EXPECT_EQ(parsed->url, "https://user:pw@host.example/a?sig=1");
}

}  // namespace
}  // namespace bitmill::net

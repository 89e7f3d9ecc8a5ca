#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/rules/parser.h"
#include "tests/unit/rules/test_util.h"

namespace popguard::rules {
namespace {

using testing::ErrorOf;
using ::testing::HasSubstr;
using testing::ParseOk;

IpAddress Ip(std::string_view text) {
  std::optional<IpAddress> address = ParseIpAddress(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(IpAddress{});
}

Header HeaderOf(std::string_view header, const Variables& variables = Variables()) {
  return ParseOk(std::string(header) + " (sid:1;)", variables).header;
}

TEST(HeaderTest, ActionsAndProtocols) {
  EXPECT_EQ(HeaderOf("alert tcp any any -> any any").action, Action::kAlert);
  EXPECT_EQ(HeaderOf("drop tcp any any -> any any").action, Action::kDrop);
  EXPECT_EQ(HeaderOf("reject tcp any any -> any any").action, Action::kReject);
  EXPECT_EQ(HeaderOf("pass tcp any any -> any any").action, Action::kPass);
  EXPECT_EQ(HeaderOf("log tcp any any -> any any").action, Action::kLog);
  for (std::string_view protocol : {"tcp", "pop3", "ip", "any", "tcp-pkt", "tcp-stream"}) {
    EXPECT_EQ(HeaderOf("alert " + std::string(protocol) + " any any -> any any").protocol,
              protocol);
  }
  EXPECT_EQ(HeaderOf("alert TCP any any -> any any").protocol, "tcp");
}

TEST(HeaderTest, BadActionsAndProtocols) {
  EXPECT_THAT(ErrorOf("block tcp any any -> any any (sid:1;)"),
              HasSubstr("t.rules:1: sid 1: unknown action 'block'"));
  EXPECT_THAT(ErrorOf("alert udp any any -> any any (sid:1;)"),
              HasSubstr("protocol 'udp' cannot carry POP3"));
  EXPECT_THAT(ErrorOf("alert http any any -> any any (sid:1;)"),
              HasSubstr("protocol 'http' cannot carry POP3"));
  EXPECT_THAT(ErrorOf("alert tcp any any <- any any (sid:1;)"),
              HasSubstr("direction '<-' (expected '->' or '<>')"));
  EXPECT_THAT(ErrorOf("alert tcp any any -> any (sid:1;)"), HasSubstr("got 6 fields"));
  EXPECT_THAT(ErrorOf("(sid:1;)"), HasSubstr("missing rule header"));
}

TEST(HeaderTest, Snort3ProtocolOnlyHeader) {
  Header header = HeaderOf("alert tcp");
  EXPECT_EQ(header.form, HeaderForm::kProtocolOnly);
  EXPECT_TRUE(header.bidirectional);
  EXPECT_EQ(header.source.kind, AddressSelector::Kind::kAny);
  EXPECT_TRUE(header.destination_ports.Matches(uint16_t{110}));
  EXPECT_EQ(HeaderOf("alert pop3").protocol, "pop3");
}

TEST(HeaderTest, Snort3BuiltinStubIsRefusedByName) {
  EXPECT_EQ(ErrorOf("alert ( gid:142; sid:1; )"),
            "t.rules:1: sid 1: rule has no protocol: Snort 3 builtin rule stubs "
            "(`alert ( gid:142; sid:1; )`) are not supported; use app-layer-event:pop3.<event>");
}

TEST(HeaderTest, Direction) {
  EXPECT_FALSE(HeaderOf("alert tcp any any -> any any").bidirectional);
  EXPECT_TRUE(HeaderOf("alert tcp any any <> any any").bidirectional);
}

TEST(HeaderTest, AddressesV4AndV6) {
  Header header = HeaderOf("alert tcp 10.1.0.0/16 any -> 2001:db8::/32 any");
  EXPECT_TRUE(header.source.Matches(Ip("10.1.200.3")));
  EXPECT_FALSE(header.source.Matches(Ip("10.2.0.1")));
  EXPECT_FALSE(header.source.Matches(Ip("::ffff:10.1.0.1")));
  EXPECT_TRUE(header.destination.Matches(Ip("2001:db8:1::5")));
  EXPECT_FALSE(header.destination.Matches(Ip("2001:db9::5")));

  Header host = HeaderOf("alert tcp 192.0.2.7 any -> ::1 any");
  EXPECT_TRUE(host.source.Matches(Ip("192.0.2.7")));
  EXPECT_FALSE(host.source.Matches(Ip("192.0.2.8")));
  EXPECT_TRUE(host.destination.Matches(Ip("::1")));
}

TEST(HeaderTest, HostBitsBeyondThePrefixAreCleared) {
  Header header = HeaderOf("alert tcp 10.1.2.3/8 any -> any any");
  EXPECT_EQ(header.source.leaf.base, Ip("10.0.0.0"));
  EXPECT_TRUE(header.source.Matches(Ip("10.9.9.9")));
}

TEST(HeaderTest, AddressListsAndNegation) {
  Header header = HeaderOf("alert tcp [10.0.0.0/8, !10.1.0.0/16, 192.0.2.1] any -> !10.0.0.1 any");
  EXPECT_TRUE(header.source.Matches(Ip("10.2.3.4")));
  EXPECT_FALSE(header.source.Matches(Ip("10.1.3.4")));
  EXPECT_TRUE(header.source.Matches(Ip("192.0.2.1")));
  EXPECT_FALSE(header.source.Matches(Ip("192.0.2.2")));
  EXPECT_FALSE(header.destination.Matches(Ip("10.0.0.1")));
  EXPECT_TRUE(header.destination.Matches(Ip("10.0.0.2")));

  // Only exclusions: everything but them.
  Header exclusions = HeaderOf("alert tcp [!10.0.0.0/8,![192.0.2.0/24]] any -> any any");
  EXPECT_FALSE(exclusions.source.Matches(Ip("10.0.0.1")));
  EXPECT_FALSE(exclusions.source.Matches(Ip("192.0.2.9")));
  EXPECT_TRUE(exclusions.source.Matches(Ip("198.51.100.1")));
}

TEST(HeaderTest, BadAddresses) {
  EXPECT_THAT(ErrorOf("alert tcp 10.0.0.300 any -> any any (sid:1;)"),
              HasSubstr("source address: '10.0.0.300' is not 'any', an IP address"));
  EXPECT_THAT(ErrorOf("alert tcp any any -> 10.0.0.0/33 any (sid:1;)"),
              HasSubstr("destination address: '10.0.0.0/33': prefix length must be 0..32"));
  EXPECT_THAT(ErrorOf("alert tcp !any any -> any any (sid:1;)"),
              HasSubstr("'!any' matches nothing"));
  EXPECT_THAT(ErrorOf("alert tcp [] any -> any any (sid:1;)"), HasSubstr("empty list '[]'"));
  EXPECT_THAT(ErrorOf("alert tcp [10.0.0.1 any -> any any (sid:1;)"),
              HasSubstr("'[' without a closing ']' in the header"));
  EXPECT_THAT(ErrorOf("alert tcp [10.0.0.1,] any -> any any (sid:1;)"), HasSubstr("empty element"));
}

TEST(HeaderTest, Ports) {
  Header header = HeaderOf("alert tcp any [1024:,!2000] -> any [110,995,:10,20:30]");
  EXPECT_TRUE(header.source_ports.Matches(uint16_t{1024}));
  EXPECT_TRUE(header.source_ports.Matches(uint16_t{65535}));
  EXPECT_FALSE(header.source_ports.Matches(uint16_t{2000}));
  EXPECT_FALSE(header.source_ports.Matches(uint16_t{80}));
  for (uint16_t port : {110, 995, 0, 10, 20, 25, 30}) {
    EXPECT_TRUE(header.destination_ports.Matches(port)) << port;
  }
  for (uint16_t port : {11, 19, 31, 111})
    EXPECT_FALSE(header.destination_ports.Matches(port)) << port;

  Header negated = HeaderOf("alert tcp any !110 -> any 100:200");
  EXPECT_FALSE(negated.source_ports.Matches(uint16_t{110}));
  EXPECT_TRUE(negated.source_ports.Matches(uint16_t{111}));
  EXPECT_TRUE(negated.destination_ports.Matches(uint16_t{150}));
  EXPECT_FALSE(negated.destination_ports.Matches(uint16_t{201}));
}

TEST(HeaderTest, BadPorts) {
  EXPECT_THAT(ErrorOf("alert tcp any 65536 -> any any (sid:1;)"),
              HasSubstr("source port: '65536' is not 'any', a port 0..65535"));
  EXPECT_THAT(ErrorOf("alert tcp any any -> any 200:100 (sid:1;)"),
              HasSubstr("destination port: port range '200:100' is empty"));
  EXPECT_THAT(ErrorOf("alert tcp any any -> any : (sid:1;)"),
              HasSubstr("destination port: ':' is not"));
  EXPECT_THAT(ErrorOf("alert tcp any !any -> any any (sid:1;)"), HasSubstr("matches nothing"));
}

TEST(VariablesTest, Defaults) {
  Header header = HeaderOf("alert tcp $EXTERNAL_NET any -> $HOME_NET $POP3_PORTS");
  EXPECT_TRUE(header.source.Matches(Ip("203.0.113.9")));
  EXPECT_TRUE(header.destination.Matches(Ip("2001:db8::1")));
  EXPECT_TRUE(header.destination_ports.Matches(uint16_t{110}));
  EXPECT_TRUE(header.destination_ports.Matches(uint16_t{995}));
  EXPECT_FALSE(header.destination_ports.Matches(uint16_t{143}));
}

TEST(VariablesTest, OverridesNestingAndNegation) {
  Variables variables;
  variables.SetAddress("HOME_NET", "[192.0.2.0/24,2001:db8::/32]");
  variables.SetAddress("$EXTERNAL_NET", "!$HOME_NET");
  variables.SetPorts("POP3_PORTS", "[110,1110]");
  variables.SetPorts("HTTP_PORTS", "80,8080");
  Header header =
      HeaderOf("alert tcp $EXTERNAL_NET $HTTP_PORTS -> $HOME_NET $POP3_PORTS", variables);
  EXPECT_TRUE(header.source.Matches(Ip("198.51.100.1")));
  EXPECT_FALSE(header.source.Matches(Ip("192.0.2.1")));
  EXPECT_TRUE(header.destination.Matches(Ip("2001:db8::25")));
  EXPECT_TRUE(header.source_ports.Matches(uint16_t{8080}));
  EXPECT_TRUE(header.destination_ports.Matches(uint16_t{1110}));
  EXPECT_FALSE(header.destination_ports.Matches(uint16_t{995}));

  Header inverse =
      HeaderOf("alert tcp !$EXTERNAL_NET any -> [$HOME_NET,!192.0.2.5] any", variables);
  EXPECT_TRUE(inverse.source.Matches(Ip("192.0.2.1")));
  EXPECT_FALSE(inverse.destination.Matches(Ip("192.0.2.5")));
  EXPECT_TRUE(inverse.destination.Matches(Ip("192.0.2.6")));
}

TEST(VariablesTest, UndefinedAndWrongNamespaceAreErrors) {
  EXPECT_EQ(ErrorOf("alert tcp any $HTTP_PORTS -> any any (sid:5;)"),
            "t.rules:1: sid 5: source port: undefined port variable $HTTP_PORTS");
  EXPECT_THAT(ErrorOf("alert tcp $SMTP_SERVERS any -> any any (sid:5;)"),
              HasSubstr("source address: undefined address variable $SMTP_SERVERS"));
  EXPECT_THAT(ErrorOf("alert tcp any $HOME_NET -> any any (sid:5;)"),
              HasSubstr("undefined port variable $HOME_NET"));
}

TEST(VariablesTest, BadValuesAndCyclesAreErrors) {
  Variables variables;
  variables.SetAddress("A", "$B");
  variables.SetAddress("B", "[10.0.0.1,$A]");
  EXPECT_THAT(ErrorOf("alert tcp $A any -> any any (sid:1;)", variables),
              HasSubstr("nests too deep (does it refer to itself?)"));
  variables.SetAddress("W0", "[$W1,$W1,$W1,$W1]");
  for (int level = 1; level < 12; ++level) {
    std::string next = "$W" + std::to_string(level + 1);
    variables.SetAddress("W" + std::to_string(level), "[" + next + "," + next + "," + next + "]");
  }
  variables.SetAddress("W12", "10.0.0.1");
  EXPECT_THAT(ErrorOf("alert tcp $W0 any -> any any (sid:1;)", variables),
              HasSubstr("expands to more than 4096 elements"));
  variables.SetAddress("HOME_NET", "10.0.0.0/99");
  EXPECT_THAT(ErrorOf("alert tcp any any -> $HOME_NET any (sid:1;)", variables),
              HasSubstr("destination address: $HOME_NET = \"10.0.0.0/99\": '10.0.0.0/99': prefix "
                        "length must be 0..32"));
}

}  // namespace
}  // namespace popguard::rules

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "agent/rules/parser.h"
#include "tests/unit/rules/test_util.h"

namespace popguard::rules {
namespace {

using ::testing::ElementsAre;
using testing::ErrorOf;
using ::testing::HasSubstr;
using testing::Only;
using ::testing::Pair;
using testing::ParseOk;
using testing::Rule;

// ---------------------------------------------------------------- metadata

TEST(MetadataOptionsTest, MsgSidGidRevAndDefaults) {
  auto rule = ParseOk(Rule(R"(msg:"a \"quoted\" \; semi \\ back"; sid:9100001; gid:3; rev:7;)"));
  EXPECT_EQ(rule.msg, R"(a "quoted" ; semi \ back)");
  EXPECT_EQ(rule.sid, 9100001u);
  EXPECT_EQ(rule.gid, 3u);
  EXPECT_EQ(rule.rev, 7u);

  auto plain = ParseOk(Rule("sid:1;"));
  EXPECT_EQ(plain.gid, 1u);
  EXPECT_EQ(plain.rev, 0u);
  EXPECT_EQ(plain.priority, 3);
  EXPECT_EQ(plain.category, "");
  EXPECT_EQ(plain.msg, "");
}

TEST(MetadataOptionsTest, SidErrors) {
  EXPECT_EQ(ErrorOf(Rule(R"(msg:"x";)")), "t.rules:1: rule has no sid");
  EXPECT_THAT(ErrorOf(Rule("sid:0;")), HasSubstr("'sid' must be a number 1..4294967295, got '0'"));
  EXPECT_THAT(ErrorOf(Rule("sid:abc;")),
              HasSubstr("'sid' must be a number 1..4294967295, got 'abc'"));
  EXPECT_THAT(ErrorOf(Rule("sid:4294967296;")), HasSubstr("'sid' must be a number"));
  EXPECT_THAT(ErrorOf(Rule("sid:1; sid:2;")), HasSubstr("sid 1: 'sid' given twice"));
  EXPECT_THAT(ErrorOf(Rule("sid;")), HasSubstr("'sid' needs a value"));
  EXPECT_THAT(ErrorOf(Rule("sid:1; rev:-1;")), HasSubstr("'rev' must be a number 0.."));
  EXPECT_THAT(ErrorOf(Rule(R"(sid:1; msg:x;)")), HasSubstr("expected a quoted string"));
  EXPECT_THAT(ErrorOf(Rule(R"(sid:1; msg:"x" y;)")), HasSubstr("unexpected text after the msg"));
  EXPECT_THAT(ErrorOf(Rule(R"(sid:1; msg:"a"; msg:"b";)")), HasSubstr("'msg' given twice"));
}

TEST(MetadataOptionsTest, ClasstypeSetsCategoryAndPriority) {
  auto admin = ParseOk(Rule("classtype:attempted-admin; sid:1;"));
  EXPECT_EQ(admin.classtype, "attempted-admin");
  EXPECT_EQ(admin.category, "Attempted Administrator Privilege Gain");
  EXPECT_EQ(admin.priority, 1);
  EXPECT_EQ(ParseOk(Rule("classtype:Misc-Activity; sid:1;")).priority, 3);
  EXPECT_EQ(ParseOk(Rule("classtype:tcp-connection; sid:1;")).priority, 4);
  // An explicit priority wins, whichever comes first.
  EXPECT_EQ(ParseOk(Rule("priority:2; classtype:attempted-admin; sid:1;")).priority, 2);
  EXPECT_EQ(ParseOk(Rule("classtype:attempted-admin; priority:5; sid:1;")).priority, 5);
  EXPECT_EQ(ErrorOf(Rule("classtype:made-up; sid:1;")),
            "t.rules:1: sid 1: unknown classtype 'made-up'");
  EXPECT_THAT(ErrorOf(Rule("priority:0; sid:1;")), HasSubstr("'priority' must be a number 1..255"));
}

TEST(MetadataOptionsTest, ClassificationTable) {
  const Classifications& builtin = Classifications::Builtin();
  EXPECT_EQ(builtin.Find("attempted-user")->priority, 1);
  EXPECT_EQ(builtin.Find("suspicious-login")->priority, 2);
  EXPECT_EQ(builtin.Find("protocol-command-decode")->priority, 3);
  EXPECT_EQ(builtin.Find("command-and-control")->priority, 1);
  EXPECT_EQ(builtin.Find("nope"), nullptr);

  Classifications custom = builtin;
  custom.Add("pop3-anomaly", "POP3 protocol anomaly", 2);
  ParseResult result =
      ParseRules(Rule("classtype:pop3-anomaly; sid:1;"), "t.rules", Variables(), custom);
  ASSERT_EQ(result.rules.size(), 1u);
  EXPECT_EQ(result.rules[0].category, "POP3 protocol anomaly");
}

TEST(MetadataOptionsTest, ReferencesAndMetadataRepeat) {
  auto rule = ParseOk(Rule(
      "reference:bugtraq,830; reference:url,doc.example.net/a,b; "
      "metadata:created_at 2010_09_23, cve CVE_1999_0822; metadata:policy max-detect-ips drop; "
      "sid:1;"));
  ASSERT_EQ(rule.references.size(), 2u);
  EXPECT_EQ(rule.references[0].type, "bugtraq");
  EXPECT_EQ(rule.references[0].value, "830");
  EXPECT_EQ(rule.references[1].value, "doc.example.net/a,b");
  EXPECT_THAT(rule.metadata,
              ElementsAre(Pair("created_at", "2010_09_23"), Pair("cve", "CVE_1999_0822"),
                          Pair("policy", "max-detect-ips drop")));
  EXPECT_THAT(ErrorOf(Rule("reference:cve; sid:1;")),
              HasSubstr("reference must be 'type,value', got 'cve'"));
  EXPECT_THAT(ErrorOf(Rule("metadata:lonely; sid:1;")),
              HasSubstr("metadata entry 'lonely' is not 'key value'"));
}

TEST(MetadataOptionsTest, TargetAndService) {
  EXPECT_EQ(ParseOk(Rule("target:dest_ip; sid:1;")).target, Target::kDestIp);
  EXPECT_EQ(ParseOk(Rule("target:src_ip; sid:1;")).target, Target::kSrcIp);
  EXPECT_THAT(ErrorOf(Rule("target:both; sid:1;")), HasSubstr("target must be src_ip or dest_ip"));

  EXPECT_THAT(ParseOk(Rule("service:pop3; sid:1;")).services, ElementsAre("pop3"));
  EXPECT_THAT(ParseOk(Rule("service:imap,POP3; sid:1;")).services, ElementsAre("imap", "pop3"));
  EXPECT_EQ(ErrorOf(Rule("service:http; sid:1;")),
            "t.rules:1: sid 1: service 'http' does not include pop3, the only service here");
}

// ---------------------------------------------------------------- content

TEST(ContentTest, TextHexEscapesAndNegation) {
  EXPECT_EQ(Only<ContentMatch>(ParseOk(Rule(R"(content:"USER"; sid:1;)"))).pattern, "USER");
  EXPECT_EQ(Only<ContentMatch>(ParseOk(Rule(R"(content:"a|0D 0a|b|4142|"; sid:1;)"))).pattern,
            "a\r\nbAB");
  EXPECT_EQ(Only<ContentMatch>(ParseOk(Rule(R"(content:"q\"s\;b\\c\:"; sid:1;)"))).pattern,
            "q\"s;b\\c:");
  EXPECT_EQ(Only<ContentMatch>(ParseOk(Rule(R"(content:"|00|"; sid:1;)"))).pattern,
            std::string(1, '\0'));
  const ContentMatch& negated = Only<ContentMatch>(ParseOk(Rule(R"(content:! "%n"; sid:1;)")));
  EXPECT_TRUE(negated.negated);
  EXPECT_EQ(negated.pattern, "%n");
  EXPECT_EQ(negated.buffer, Buffer::kPayload);
}

TEST(ContentTest, SyntaxErrors) {
  EXPECT_THAT(ErrorOf(Rule(R"(content:"|4|"; sid:1;)")), HasSubstr("odd number of hex digits"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"|4 1|"; sid:1;)")), HasSubstr("hex byte split by a space"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"|zz|"; sid:1;)")), HasSubstr("'z' is not a hex digit"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"ab|41"; sid:1;)")), HasSubstr("unterminated |hex| segment"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a\nb"; sid:1;)")), HasSubstr("unknown escape in content"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:""; sid:1;)")), HasSubstr("empty content"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:USER; sid:1;)")), HasSubstr("expected a quoted string"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a" b; sid:1;)")),
              HasSubstr("unexpected text after the content string"));
  EXPECT_THAT(ErrorOf(Rule("content; sid:1;")), HasSubstr("'content' needs a value"));
}

TEST(ContentTest, SuricataModifiers) {
  const ContentMatch& c = Only<ContentMatch>(ParseOk(
      Rule(R"(content:"RETR "; nocase; offset:0; depth:5; rawbytes; fast_pattern; sid:1;)")));
  EXPECT_TRUE(c.nocase);
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(c.depth, 5u);
  ASSERT_TRUE(c.fast_pattern.has_value());
  EXPECT_FALSE(c.fast_pattern->only);

  auto rule = ParseOk(Rule(R"(content:"A"; content:"B"; distance:-1; within:3; sid:1;)"));
  const auto& b = std::get<ContentMatch>(rule.detections[1]);
  EXPECT_EQ(b.distance, -1);
  EXPECT_EQ(b.within, 3u);
  EXPECT_FALSE(std::get<ContentMatch>(rule.detections[0]).distance.has_value());

  const ContentMatch& s =
      Only<ContentMatch>(ParseOk(Rule(R"(content:"USER"; startswith; sid:1;)")));
  EXPECT_TRUE(s.startswith);
  EXPECT_TRUE(Only<ContentMatch>(ParseOk(Rule(R"(content:"x"; endswith; sid:1;)"))).endswith);
}

TEST(ContentTest, FastPatternForms) {
  const ContentMatch& only =
      Only<ContentMatch>(ParseOk(Rule(R"(content:"USER"; fast_pattern:only; sid:1;)")));
  EXPECT_TRUE(only.fast_pattern->only);
  const ContentMatch& slice =
      Only<ContentMatch>(ParseOk(Rule(R"(content:"abcdef"; fast_pattern:1,4; sid:1;)")));
  EXPECT_EQ(slice.fast_pattern->slice_offset, 1u);
  EXPECT_EQ(slice.fast_pattern->slice_length, 4u);

  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; fast_pattern; content:"b"; fast_pattern; sid:1;)")),
              HasSubstr("fast_pattern on both content \"a\" and content \"b\"; only one allowed"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"abc"; fast_pattern:only; depth:3; sid:1;)")),
              HasSubstr("fast_pattern:only cannot be negated or positioned"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"abc"; fast_pattern:2,2; sid:1;)")),
              HasSubstr("fast_pattern slice 2,2 runs past the pattern (3 bytes)"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:!"abc"; depth:5; fast_pattern; sid:1;)")),
              HasSubstr("a negated, positioned content cannot be the fast_pattern"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"abc"; fast_pattern:sometimes; sid:1;)")),
              HasSubstr("fast_pattern takes no value, 'only' or 'offset,length'"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"abc"; fast_pattern; fast_pattern:only; sid:1;)")),
              HasSubstr("'fast_pattern' given twice for content \"abc\""));
}

TEST(ContentTest, Snort3InlineModifiers) {
  const ContentMatch& c = Only<ContentMatch>(
      ParseOk(Rule(R"(content:"PASS",fast_pattern,nocase, offset 0,depth 4; sid:1;)")));
  EXPECT_TRUE(c.nocase);
  EXPECT_TRUE(c.fast_pattern.has_value());
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(c.depth, 4u);

  const ContentMatch& sliced = Only<ContentMatch>(ParseOk(Rule(
      R"(content:"abcdef",fast_pattern,fast_pattern_offset 1,fast_pattern_length 4; sid:1;)")));
  EXPECT_EQ(sliced.fast_pattern->slice_offset, 1u);
  EXPECT_EQ(sliced.fast_pattern->slice_length, 4u);

  auto rule = ParseOk(Rule(R"(content:"A"; content:"B",distance 1,within 5; sid:1;)"));
  EXPECT_EQ(std::get<ContentMatch>(rule.detections[1]).within, 5u);

  EXPECT_THAT(ErrorOf(Rule(R"(content:"abc",bogus; sid:1;)")),
              HasSubstr("unknown content modifier 'bogus'"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"abc",depth; sid:1;)")), HasSubstr("'depth' needs a value"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"abc",fast_pattern_offset 1; sid:1;)")),
              HasSubstr("fast_pattern needs both an offset and a length"));
}

TEST(ContentTest, ModifierWithoutContent) {
  EXPECT_EQ(ErrorOf(Rule("nocase; sid:4;")),
            "t.rules:1: sid 4: 'nocase' needs a preceding content");
  EXPECT_THAT(ErrorOf(Rule("depth:4; sid:4;")), HasSubstr("'depth' needs a preceding content"));
  EXPECT_THAT(ErrorOf(Rule("fast_pattern; sid:4;")), HasSubstr("'fast_pattern' needs a preceding"));
  EXPECT_THAT(ErrorOf(Rule("rawbytes; sid:4;")), HasSubstr("'rawbytes' needs a preceding content"));
  // The content must be in the current buffer.
  EXPECT_EQ(ErrorOf(Rule(R"(content:"USER"; pop3.args; nocase; sid:4;)")),
            "t.rules:1: sid 4: 'nocase' needs a preceding content in the pop3.args buffer");
}

TEST(ContentTest, ModifierValueErrors) {
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; nocase; nocase; sid:1;)")),
              HasSubstr("'nocase' given twice for content \"a\""));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; nocase:1; sid:1;)")),
              HasSubstr("'nocase' takes no value"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; depth:0; sid:1;)")),
              HasSubstr("'depth' must be a number 1..1048576, got '0'"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; offset:-1; sid:1;)")), HasSubstr("'offset' must be"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; content:"b"; distance:2000000; sid:1;)")),
              HasSubstr("'distance' must be a number -1048576..1048576"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; depth:len; sid:1;)")),
              HasSubstr("'len' looks like a byte_extract variable, which is not supported"));
}

TEST(ContentTest, ImpossiblePositions) {
  EXPECT_EQ(ErrorOf(Rule(R"(content:"USER"; depth:3; sid:8;)")),
            "t.rules:1: sid 8: content \"USER\": depth 3 is shorter than the pattern (4 bytes); "
            "it can never match");
  EXPECT_THAT(ErrorOf(Rule(R"(content:"A"; content:"BCD"; within:2; sid:1;)")),
              HasSubstr("within 2 leaves no room for the pattern (needs at least 3)"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"A"; content:"BCD"; distance:4; within:6; sid:1;)")),
              HasSubstr("within 6 leaves no room for the pattern (needs at least 7)"));
  EXPECT_THAT(
      ErrorOf(Rule(R"(content:"A"; content:"B"; depth:5; distance:0; sid:1;)")),
      HasSubstr("offset/depth (from the buffer start) cannot be mixed with distance/within"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"AB"; startswith; offset:1; sid:1;)")),
              HasSubstr("startswith cannot be mixed"));
}

TEST(ContentTest, RelativeNeedsSomethingBefore) {
  EXPECT_EQ(ErrorOf(Rule(R"(content:"USER"; distance:1; sid:2;)")),
            "t.rules:1: sid 2: distance on content \"USER\": nothing before it in the payload "
            "buffer to be relative to (use offset/depth, or an absolute form)");
  EXPECT_THAT(ErrorOf(Rule(R"(content:"USER"; within:10; sid:2;)")),
              HasSubstr("within on content \"USER\": nothing before it"));
  // The anchor must be in the same buffer.
  EXPECT_THAT(ErrorOf(Rule(R"(content:"USER"; pop3.args; content:"%"; distance:0; sid:2;)")),
              HasSubstr("nothing before it in the pop3.args buffer"));
  // A pcre is an anchor too.
  ParseOk(Rule(R"(pcre:"/^USER/"; content:"%"; distance:0; sid:2;)"));
}

// ---------------------------------------------------------------- pcre

TEST(PcreTest, RegexAndModifiers) {
  const PcreMatch& pcre =
      Only<PcreMatch>(ParseOk(Rule(R"(pcre:"/^USER\s[^\n]{50}\;\"\\/smixAEGOB"; sid:1;)")));
  EXPECT_EQ(pcre.regex, R"(^USER\s[^\n]{50}\;\"\\)");
  EXPECT_FALSE(pcre.negated);
  EXPECT_TRUE(pcre.modifiers.caseless);
  EXPECT_TRUE(pcre.modifiers.dotall);
  EXPECT_TRUE(pcre.modifiers.multiline);
  EXPECT_TRUE(pcre.modifiers.extended);
  EXPECT_TRUE(pcre.modifiers.anchored);
  EXPECT_TRUE(pcre.modifiers.dollar_endonly);
  EXPECT_TRUE(pcre.modifiers.ungreedy);
  EXPECT_TRUE(pcre.modifiers.override_match_limit);
  EXPECT_FALSE(pcre.modifiers.relative);

  const PcreMatch& bare = Only<PcreMatch>(ParseOk(Rule(R"(pcre:!"/a\/b/"; sid:1;)")));
  EXPECT_TRUE(bare.negated);
  EXPECT_EQ(bare.regex, R"(a\/b)");

  auto relative = ParseOk(Rule(R"(content:"UIDL"; pcre:"/\s+-\d/R"; sid:1;)"));
  EXPECT_TRUE(std::get<PcreMatch>(relative.detections[1]).modifiers.relative);
}

TEST(PcreTest, Errors) {
  EXPECT_EQ(ErrorOf(Rule(R"(pcre:"/x/U"; sid:3;)")),
            "t.rules:1: sid 3: pcre modifier 'U' selects an HTTP buffer; POP3 has none");
  EXPECT_THAT(ErrorOf(Rule(R"(pcre:"/x/Z"; sid:3;)")), HasSubstr("unknown pcre modifier 'Z'"));
  EXPECT_THAT(ErrorOf(Rule(R"(pcre:"x"; sid:3;)")), HasSubstr("pcre must be written"));
  EXPECT_THAT(ErrorOf(Rule(R"(pcre:"/x"; sid:3;)")), HasSubstr("pcre must be written"));
  EXPECT_THAT(ErrorOf(Rule(R"(pcre:"//i"; sid:3;)")), HasSubstr("empty regex"));
  EXPECT_THAT(ErrorOf(Rule(R"(pcre:"/(\w+)/", flow:user; sid:3;)")),
              HasSubstr("pcre capture variables (flow:/pkt:/alert:) are not supported"));
  EXPECT_THAT(ErrorOf(Rule(R"(pcre:"/x/R"; sid:3;)")),
              HasSubstr("pcre /R: nothing before it in the payload buffer"));
}

// ---------------------------------------------------------------- isdataat, byte_test

TEST(IsDataAtTest, Forms) {
  const IsDataAt& plain = Only<IsDataAt>(ParseOk(Rule("isdataat:512; sid:1;")));
  EXPECT_EQ(plain.position, 512u);
  EXPECT_FALSE(plain.negated);
  EXPECT_FALSE(plain.relative);
  const IsDataAt& negated = Only<IsDataAt>(ParseOk(Rule("isdataat:!1, rawbytes; sid:1;")));
  EXPECT_TRUE(negated.negated);
  EXPECT_EQ(negated.position, 1u);

  auto relative = ParseOk(Rule(R"(content:"USER"; isdataat:50, relative; sid:1;)"));
  EXPECT_TRUE(std::get<IsDataAt>(relative.detections[1]).relative);

  EXPECT_THAT(ErrorOf(Rule("isdataat:50,relative; sid:1;")),
              HasSubstr("isdataat relative: nothing before it in the payload buffer"));
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; isdataat:5,backwards; sid:1;)")),
              HasSubstr("isdataat takes 'relative' or 'rawbytes' after the position"));
  EXPECT_THAT(ErrorOf(Rule("isdataat:x; sid:1;")), HasSubstr("byte_extract variable"));
}

TEST(ByteTestTest, FullForm) {
  auto rule = ParseOk(Rule(
      R"(content:"|01|"; byte_test:4, !>=, 0x10, -2, relative, little, string, dec, bitmask 0xF0; sid:1;)"));
  const auto& test = std::get<ByteTest>(rule.detections[1]);
  EXPECT_EQ(test.bytes, 4);
  EXPECT_EQ(test.op, ByteTestOperator::kGreaterEqual);
  EXPECT_TRUE(test.negated);
  EXPECT_EQ(test.value, 16u);
  EXPECT_EQ(test.offset, -2);
  EXPECT_TRUE(test.relative);
  EXPECT_EQ(test.endian, Endian::kLittle);
  EXPECT_EQ(test.string_base, NumberBase::kDec);
  EXPECT_EQ(test.bitmask, 0xF0u);
}

TEST(ByteTestTest, OperatorsIncludingSnortBareNot) {
  struct Case {
    const char* op;
    ByteTestOperator expected;
    bool negated;
  };
  for (const Case& c :
       {Case{"<", ByteTestOperator::kLess, false}, Case{">", ByteTestOperator::kGreater, false},
        Case{"=", ByteTestOperator::kEqual, false}, Case{"<=", ByteTestOperator::kLessEqual, false},
        Case{"&", ByteTestOperator::kAnd, false}, Case{"^", ByteTestOperator::kOr, false},
        Case{"!=", ByteTestOperator::kEqual, true}, Case{"!", ByteTestOperator::kEqual, true},
        Case{"!&", ByteTestOperator::kAnd, true}}) {
    const ByteTest& test =
        Only<ByteTest>(ParseOk(Rule("byte_test:2," + std::string(c.op) + ",0,8; sid:1;")));
    EXPECT_EQ(test.op, c.expected) << c.op;
    EXPECT_EQ(test.negated, c.negated) << c.op;
    EXPECT_EQ(test.endian, Endian::kBig);
    EXPECT_FALSE(test.string_base.has_value());
  }
  EXPECT_EQ(Only<ByteTest>(ParseOk(Rule("byte_test:10,=,5,0,string hex; sid:1;"))).string_base,
            NumberBase::kHex);
}

TEST(ByteTestTest, Errors) {
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,>,1; sid:1;")),
              HasSubstr("byte_test needs 'bytes, operator, value, offset'"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,<>,1,0; sid:1;")),
              HasSubstr("byte_test operator must be [!]<, >, =, <=, >=, & or ^, got '<>'"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:9,=,1,0; sid:1;")),
              HasSubstr("byte_test reads at most 8 bytes as a binary number"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:11,=,1,0,string,dec; sid:1;")),
              HasSubstr("'byte_test byte count' must be a number 1..10"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,=,1,0,dce; sid:1;")), HasSubstr("POP3 has no DCE/RPC"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,=,1,0,big,little; sid:1;")),
              HasSubstr("both big and little endian"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,=,1,0,string,bin; sid:1;")),
              HasSubstr("byte_test string needs hex, dec or oct, got 'bin'"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,=,size,0; sid:1;")),
              HasSubstr("byte_test value 'size' is a variable"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,=,1,0,relative; sid:1;")),
              HasSubstr("byte_test relative: nothing before it"));
  EXPECT_THAT(ErrorOf(Rule("byte_test:2,=,1,0,sideways; sid:1;")),
              HasSubstr("unknown byte_test parameter 'sideways'"));
}

// ---------------------------------------------------------------- sizes

TEST(SizeTest, Dsize) {
  struct Case {
    const char* text;
    Comparison op;
    uint64_t value;
  };
  for (const Case& c :
       {Case{"10", Comparison::kEqual, 10}, Case{"=10", Comparison::kEqual, 10},
        Case{"!10", Comparison::kNotEqual, 10}, Case{"<10", Comparison::kLess, 10},
        Case{"<=10", Comparison::kLessEqual, 10}, Case{">10", Comparison::kGreater, 10},
        Case{">= 10", Comparison::kGreaterEqual, 10}}) {
    auto rule = ParseOk(Rule("dsize:" + std::string(c.text) + "; sid:1;"));
    ASSERT_TRUE(rule.dsize.has_value());
    EXPECT_EQ(rule.dsize->op, c.op) << c.text;
    EXPECT_EQ(rule.dsize->value, c.value) << c.text;
  }
  auto range = ParseOk(Rule("dsize:10<>20; sid:1;"));
  EXPECT_EQ(range.dsize->op, Comparison::kRange);
  EXPECT_FALSE(range.dsize->Matches(10));
  EXPECT_TRUE(range.dsize->Matches(11));
  EXPECT_TRUE(range.dsize->Matches(19));
  EXPECT_FALSE(range.dsize->Matches(20));

  EXPECT_THAT(ErrorOf(Rule("dsize:65536; sid:1;")), HasSubstr("'dsize' must be n, !n, <n"));
  EXPECT_THAT(ErrorOf(Rule("dsize:5<>6; sid:1;")), HasSubstr("is empty (both ends are exclusive)"));
  EXPECT_THAT(ErrorOf(Rule("dsize:1; dsize:2; sid:1;")), HasSubstr("'dsize' given twice"));
  EXPECT_THAT(ErrorOf(Rule(R"(dsize:>100; pop3.args; content:"%"; sid:1;)")),
              HasSubstr("dsize measures the payload and cannot be combined with POP3 buffers"));
}

TEST(SizeTest, BsizeOnStickyBuffers) {
  auto rule = ParseOk(Rule(R"(pop3.command; content:"USER"; pop3.args; bsize:>50; sid:1;)"));
  const auto& size = std::get<BufferSize>(rule.detections[1]);
  EXPECT_EQ(size.buffer, Buffer::kPop3Args);
  EXPECT_EQ(size.test.op, Comparison::kGreater);
  EXPECT_EQ(size.test.value, 50u);
  EXPECT_THAT(ErrorOf(Rule("bsize:>50; sid:1;")), HasSubstr("bsize measures a sticky buffer"));
}

// ---------------------------------------------------------------- flow, flags

TEST(FlowTest, Words) {
  auto rule = ParseOk(Rule("flow:to_server,established,only_stream,no_frag; sid:1;"));
  EXPECT_EQ(rule.flow->direction, FlowDirection::kToServer);
  EXPECT_EQ(rule.flow->state, FlowState::kEstablished);
  EXPECT_EQ(rule.flow->stream, StreamMode::kOnlyStream);
  EXPECT_EQ(rule.flow->fragments, FragmentMode::kNoFrag);

  auto other = ParseOk(Rule("flow: from_server, stateless, no_stream, only_frag; sid:1;"));
  EXPECT_EQ(other.flow->direction, FlowDirection::kToClient);
  EXPECT_EQ(other.flow->state, FlowState::kStateless);
  EXPECT_EQ(other.flow->stream, StreamMode::kNoStream);
  EXPECT_EQ(other.flow->fragments, FragmentMode::kOnlyFrag);
  EXPECT_EQ(ParseOk(Rule("flow:from_client,not_established; sid:1;")).flow->state,
            FlowState::kNotEstablished);
  EXPECT_EQ(ParseOk(Rule("flow:to_server,from_client; sid:1;")).flow->direction,
            FlowDirection::kToServer);
}

TEST(FlowTest, Conflicts) {
  EXPECT_EQ(ErrorOf(Rule("flow:to_server,to_client; sid:6;")),
            "t.rules:1: sid 6: conflicting flow directions 'to_server' and 'to_client'");
  EXPECT_THAT(ErrorOf(Rule("flow:from_client,from_server; sid:6;")),
              HasSubstr("conflicting flow directions"));
  EXPECT_THAT(ErrorOf(Rule("flow:established,stateless; sid:6;")),
              HasSubstr("conflicting flow states 'established' and 'stateless'"));
  EXPECT_THAT(ErrorOf(Rule("flow:only_stream,no_stream; sid:6;")),
              HasSubstr("conflicting flow stream modes"));
  EXPECT_THAT(ErrorOf(Rule("flow:sideways; sid:6;")), HasSubstr("unknown flow option 'sideways'"));
  EXPECT_THAT(ErrorOf(Rule("flow:to_server; flow:established; sid:6;")),
              HasSubstr("'flow' given twice"));
}

TEST(FlagsTest, Forms) {
  auto syn = ParseOk(Rule("flags:S,12; sid:1;"));
  EXPECT_EQ(syn.flags->flags, kTcpSyn);
  EXPECT_EQ(syn.flags->match, FlagsMatch::kExact);
  EXPECT_EQ(syn.flags->ignored, kTcpCwr | kTcpEce);

  EXPECT_EQ(ParseOk(Rule("flags:SF,CE; sid:1;")).flags->ignored, kTcpCwr | kTcpEce);
  auto plus = ParseOk(Rule("flags:+SA; sid:1;"));
  EXPECT_EQ(plus.flags->match, FlagsMatch::kAllOf);
  EXPECT_EQ(plus.flags->flags, kTcpSyn | kTcpAck);
  auto suffix = ParseOk(Rule("flags:A+; sid:1;"));
  EXPECT_EQ(suffix.flags->match, FlagsMatch::kAllOf);
  EXPECT_EQ(suffix.flags->flags, kTcpAck);
  EXPECT_EQ(ParseOk(Rule("flags:*FRU; sid:1;")).flags->match, FlagsMatch::kAnyOf);
  auto none_of = ParseOk(Rule("flags:!P; sid:1;"));
  EXPECT_EQ(none_of.flags->match, FlagsMatch::kNoneOf);
  EXPECT_EQ(none_of.flags->flags, kTcpPsh);
  auto zero = ParseOk(Rule("flags:0; sid:1;"));
  EXPECT_EQ(zero.flags->flags, 0);
  EXPECT_EQ(zero.flags->match, FlagsMatch::kExact);
}

TEST(FlagsTest, Errors) {
  EXPECT_THAT(ErrorOf(Rule("flags:SX; sid:1;")), HasSubstr("unknown TCP flag 'X'"));
  EXPECT_THAT(ErrorOf(Rule("flags:S0; sid:1;")),
              HasSubstr("flags 0 (no flag set) cannot be combined"));
  EXPECT_THAT(ErrorOf(Rule("flags:+S+; sid:1;")),
              HasSubstr("flags has a modifier at both ends of '+S+'"));
  EXPECT_THAT(ErrorOf(Rule("flags:+; sid:1;")),
              HasSubstr("flags needs at least one of FSRPAUCE or 0"));
  EXPECT_THAT(ErrorOf(Rule("flags:++S; sid:1;")), HasSubstr("unknown TCP flag '+'"));
  EXPECT_THAT(ErrorOf(Rule("flags:+0; sid:1;")),
              HasSubstr("flags 0 (no flag set) takes no modifier"));
  EXPECT_THAT(ErrorOf(Rule("flags:S,Z; sid:1;")),
              HasSubstr("unknown TCP flag 'Z' in the ignore mask"));
  EXPECT_THAT(ErrorOf(Rule("flags:S,1,2; sid:1;")),
              HasSubstr("flags takes '[+*!]flags[,ignored]'"));
}

// ---------------------------------------------------------------- flowbits

TEST(FlowbitsTest, Commands) {
  auto rule = ParseOk(
      Rule("flowbits:isnotset,sslv3.client_hello.request; flowbits:set,a&b; flowbits:isset,x|y; "
           "flowbits:unset,z; flowbits:toggle,t; flowbits:isset,p&q; flowbits:noalert; sid:1;"));
  ASSERT_EQ(rule.flowbits.size(), 6u);
  EXPECT_EQ(rule.flowbits[0].command, FlowbitsCommand::kIsNotSet);
  EXPECT_THAT(rule.flowbits[0].names, ElementsAre("sslv3.client_hello.request"));
  EXPECT_EQ(rule.flowbits[1].command, FlowbitsCommand::kSet);
  EXPECT_THAT(rule.flowbits[1].names, ElementsAre("a", "b"));
  EXPECT_FALSE(rule.flowbits[1].any_of);
  EXPECT_EQ(rule.flowbits[2].command, FlowbitsCommand::kIsSet);
  EXPECT_THAT(rule.flowbits[2].names, ElementsAre("x", "y"));
  EXPECT_TRUE(rule.flowbits[2].any_of);
  EXPECT_EQ(rule.flowbits[3].command, FlowbitsCommand::kUnset);
  EXPECT_EQ(rule.flowbits[4].command, FlowbitsCommand::kToggle);
  EXPECT_FALSE(rule.flowbits[5].any_of);
  EXPECT_TRUE(rule.noalert);
  EXPECT_TRUE(ParseOk(Rule("noalert; sid:1;")).noalert);
}

TEST(FlowbitsTest, Errors) {
  EXPECT_THAT(ErrorOf(Rule("flowbits:set,a,grp; sid:1;")),
              HasSubstr("flowbits groups (a third argument) are not supported"));
  EXPECT_THAT(ErrorOf(Rule("flowbits:setx,a,grp; sid:1;")),
              HasSubstr("flowbits 'setx' (Snort flowbit groups) is not supported"));
  EXPECT_THAT(ErrorOf(Rule("flowbits:flip,a; sid:1;")),
              HasSubstr("unknown flowbits command 'flip'"));
  EXPECT_THAT(ErrorOf(Rule("flowbits:set; sid:1;")), HasSubstr("flowbits 'set' needs a name"));
  EXPECT_THAT(ErrorOf(Rule("flowbits:set,a|b; sid:1;")),
              HasSubstr("'|' (any of) only applies to isset and isnotset"));
  EXPECT_THAT(ErrorOf(Rule("flowbits:isset,a|b&c; sid:1;")), HasSubstr("mix '|' and '&'"));
  EXPECT_THAT(ErrorOf(Rule("flowbits:isset,a b; sid:1;")), HasSubstr("flowbit name 'a b'"));
  EXPECT_THAT(ErrorOf(Rule("flowbits:noalert,x; sid:1;")),
              HasSubstr("flowbits:noalert takes no name"));
  EXPECT_THAT(ErrorOf(Rule("noalert:1; sid:1;")), HasSubstr("'noalert' takes no value"));
}

// ---------------------------------------------------------------- thresholds

TEST(ThresholdTest, Forms) {
  auto rule = ParseOk(Rule("threshold: type both, track by_src, count 30, seconds 120; sid:1;"));
  EXPECT_EQ(rule.threshold->type, ThresholdType::kBoth);
  EXPECT_EQ(rule.threshold->track, Track::kBySrc);
  EXPECT_EQ(rule.threshold->count, 30u);
  EXPECT_EQ(rule.threshold->seconds, 120u);
  EXPECT_EQ(
      ParseOk(Rule("threshold:seconds 1,count 2,track by_dst,type limit; sid:1;")).threshold->type,
      ThresholdType::kLimit);
  EXPECT_EQ(ParseOk(Rule("threshold:type threshold,track by_rule,count 2,seconds 9; sid:1;"))
                .threshold->track,
            Track::kByRule);
  auto backoff =
      ParseOk(Rule("threshold:type backoff,track by_flow,count 1,multiplier 10; sid:1;"));
  EXPECT_EQ(backoff.threshold->type, ThresholdType::kBackoff);
  EXPECT_EQ(backoff.threshold->multiplier, 10u);

  auto filter = ParseOk(Rule("detection_filter:track by_dst,count 30,seconds 30; sid:1;"));
  EXPECT_EQ(filter.detection_filter->track, Track::kByDst);
  EXPECT_EQ(filter.detection_filter->count, 30u);
  EXPECT_EQ(filter.detection_filter->seconds, 30u);
  EXPECT_FALSE(filter.detection_filter->unique_on.has_value());
  EXPECT_EQ(ParseOk(Rule("detection_filter:track by_both,count 3,seconds 3,unique_on dst_port; "
                         "sid:1;"))
                .detection_filter->unique_on,
            UniqueOn::kDstPort);
}

TEST(ThresholdTest, Errors) {
  EXPECT_THAT(ErrorOf(Rule("threshold:type both,track by_src,count 3; sid:1;")),
              HasSubstr("threshold needs 'seconds'"));
  EXPECT_THAT(ErrorOf(Rule("threshold:type often,track by_src,count 3,seconds 1; sid:1;")),
              HasSubstr("threshold type must be threshold, limit, both or backoff"));
  EXPECT_THAT(ErrorOf(Rule("threshold:type both,track by_port,count 3,seconds 1; sid:1;")),
              HasSubstr("threshold track must be"));
  EXPECT_THAT(
      ErrorOf(Rule("threshold:type both,type limit,track by_src,count 3,seconds 1; sid:1;")),
      HasSubstr("threshold 'type' given twice"));
  EXPECT_THAT(ErrorOf(Rule("threshold:track by_src,count 3,seconds 1; sid:1;")),
              HasSubstr("threshold needs 'type'"));
  EXPECT_THAT(ErrorOf(Rule("threshold:type backoff,track by_src,count 1,multiplier 2; sid:1;")),
              HasSubstr("backoff needs track by_flow"));
  EXPECT_THAT(ErrorOf(Rule("threshold:type both,track by_src,count 0,seconds 1; sid:1;")),
              HasSubstr("'threshold count' must be a number 1.."));
  EXPECT_THAT(ErrorOf(Rule("detection_filter:track by_src,count 3; sid:1;")),
              HasSubstr("detection_filter needs 'seconds'"));
  EXPECT_THAT(ErrorOf(Rule("detection_filter:track by_src,count 3,seconds 1,unique_on ip; sid:1;")),
              HasSubstr("unique_on must be src_port or dst_port"));
  EXPECT_THAT(ErrorOf(Rule("threshold:type limit,track by_src,count 1,seconds 1; "
                           "detection_filter:track by_src,count 3,seconds 1; sid:1;")),
              HasSubstr("threshold and detection_filter cannot be used together"));
}

// ---------------------------------------------------------------- base64

TEST(Base64Test, DecodeAndData) {
  auto rule = ParseOk(Rule(
      R"(pop3.sasl; content:"realm"; base64_decode:bytes 200, offset 2, relative; base64_data; content:"realm=|22|"; sid:1;)"));
  ASSERT_EQ(rule.detections.size(), 3u);
  const auto& decode = std::get<Base64Decode>(rule.detections[1]);
  EXPECT_EQ(decode.buffer, Buffer::kPop3Sasl);
  EXPECT_EQ(decode.bytes, 200u);
  EXPECT_EQ(decode.offset, 2u);
  EXPECT_TRUE(decode.relative);
  EXPECT_EQ(std::get<ContentMatch>(rule.detections[2]).buffer, Buffer::kBase64Data);

  auto bare = ParseOk(Rule(R"(base64_decode; base64_data; content:"x"; sid:1;)"));
  const auto& defaults = std::get<Base64Decode>(bare.detections[0]);
  EXPECT_FALSE(defaults.bytes.has_value());
  EXPECT_EQ(defaults.offset, 0u);
  EXPECT_FALSE(defaults.relative);
}

TEST(Base64Test, Errors) {
  EXPECT_THAT(ErrorOf(Rule(R"(base64_data; content:"x"; sid:1;)")),
              HasSubstr("base64_data needs a base64_decode before it"));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode:bytes 4; sid:1;)")),
              HasSubstr("base64_decode has no base64_data after it"));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode; base64_data; sid:1;)")),
              HasSubstr("sticky buffer 'base64_data' has no content"));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode; base64_data; content:"abc"; fast_pattern; sid:1;)")),
              HasSubstr("fast_pattern cannot apply to decoded base64_data"));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode:relative; base64_data; content:"x"; sid:1;)")),
              HasSubstr("base64_decode relative: nothing before it"));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode:bytes 0; base64_data; content:"x"; sid:1;)")),
              HasSubstr("'base64_decode bytes' must be a number 1.."));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode:bytes 1, bytes 2; base64_data; content:"x"; sid:1;)")),
              HasSubstr("base64_decode 'bytes' given twice"));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode:width 3; base64_data; content:"x"; sid:1;)")),
              HasSubstr("base64_decode takes 'bytes N', 'offset N' and 'relative'"));
}

// ---------------------------------------------------------------- POP3 buffers and events

TEST(StickyBufferTest, BuffersApplyUntilTheNextSwitch) {
  auto rule = ParseOk(Rule(
      R"(content:"raw"; pop3.command; content:"USER"; pcre:"/^user$/i"; pop3.args; content:"%"; isdataat:!256,relative; pkt_data; content:"tail"; sid:1;)"));
  ASSERT_EQ(rule.detections.size(), 6u);
  EXPECT_EQ(std::get<ContentMatch>(rule.detections[0]).buffer, Buffer::kPayload);
  EXPECT_EQ(std::get<ContentMatch>(rule.detections[1]).buffer, Buffer::kPop3Command);
  EXPECT_EQ(std::get<PcreMatch>(rule.detections[2]).buffer, Buffer::kPop3Command);
  EXPECT_EQ(std::get<ContentMatch>(rule.detections[3]).buffer, Buffer::kPop3Args);
  EXPECT_EQ(std::get<IsDataAt>(rule.detections[4]).buffer, Buffer::kPop3Args);
  EXPECT_EQ(std::get<ContentMatch>(rule.detections[5]).buffer, Buffer::kPayload);

  EXPECT_EQ(Only<ContentMatch>(ParseOk(Rule(R"(pop3.response; content:"+OK"; sid:1;)"))).buffer,
            Buffer::kPop3Response);
  // SASL data flows both ways: either flow direction is fine.
  ParseOk(Rule(R"(flow:to_client; pop3.sasl; content:"realm"; sid:1;)"));
  ParseOk(Rule(R"(flow:to_server; pop3.sasl; content:"realm"; sid:1;)"));
}

TEST(StickyBufferTest, Errors) {
  EXPECT_EQ(ErrorOf(Rule(R"(pop3.args; pop3.command; content:"USER"; sid:1;)")),
            "t.rules:1: sid 1: sticky buffer 'pop3.args' has no content, pcre or other payload "
            "keyword after it");
  EXPECT_THAT(ErrorOf(Rule(R"(content:"x"; pop3.args; sid:1;)")),
              HasSubstr("sticky buffer 'pop3.args' has no content"));
  EXPECT_THAT(ErrorOf(Rule(R"(pop3.sasl; pkt_data; content:"x"; sid:1;)")),
              HasSubstr("sticky buffer 'pop3.sasl' has no content"));
  EXPECT_THAT(ErrorOf(Rule(R"(base64_decode; pop3.args; base64_data; content:"x"; sid:1;)")),
              HasSubstr("sticky buffer 'pop3.args' has no content"));
  EXPECT_THAT(ErrorOf(Rule("pop3.args:1; sid:1;")), HasSubstr("'pop3.args' takes no value"));
  EXPECT_THAT(ErrorOf(Rule(R"(flow:to_server; pop3.response; content:"-ERR"; sid:1;)")),
              HasSubstr("pop3.response is server-to-client data but the rule says flow:to_server"));
  EXPECT_THAT(ErrorOf(Rule(R"(flow:to_client; pop3.command; content:"USER"; sid:1;)")),
              HasSubstr("pop3.command is client-to-server data but the rule says flow:to_client"));
  EXPECT_THAT(
      ErrorOf(Rule(R"(pop3.command; content:"USER"; pop3.response; content:"+OK"; sid:1;)")),
      HasSubstr("pop3.response is server-to-client data but pop3.command is "
                "client-to-server; one rule matches one direction"));
  EXPECT_THAT(ErrorOf(Rule("pop3.status; sid:1;")),
              HasSubstr("unknown POP3 keyword 'pop3.status' (the POP3 buffers are pop3.command, "
                        "pop3.args, pop3.response, pop3.sasl, pop3.digest_realm)"));
  EXPECT_THAT(
      ErrorOf(Rule("flow:to_server; pop3.digest_realm; bsize:>=124; sid:1;")),
      HasSubstr("pop3.digest_realm is server-to-client data but the rule says flow:to_server"));
}

TEST(StickyBufferTest, DigestRealm) {
  // The CVE-2013-0249 rule: libcurl 7.26-7.28.1 copies at most 127 bytes of
  // the realm into a 128-byte buffer, so a long realm is worth an alert.
  auto rule = ParseOk(Rule("pop3.digest_realm; bsize:>=124; sid:1;"));
  const auto size = Only<BufferSize>(rule);
  EXPECT_EQ(size.buffer, Buffer::kPop3DigestRealm);
  EXPECT_EQ(size.test.op, Comparison::kGreaterEqual);
  EXPECT_EQ(size.test.value, 124u);
  EXPECT_EQ(BufferName(Buffer::kPop3DigestRealm), "pop3.digest_realm");

  EXPECT_EQ(Only<ContentMatch>(
                ParseOk(Rule(R"(flow:to_client; pop3.digest_realm; content:"evil"; sid:1;)")))
                .buffer,
            Buffer::kPop3DigestRealm);
}

TEST(AppLayerEventTest, Pop3Events) {
  auto rule = ParseOk(
      "alert pop3 any any -> any any (app-layer-event:pop3.too_many_transactions; "
      "app-layer-event:pop3.request_too_long; app-layer-event:pop3.incorrect_argument_count; "
      "app-layer-event:pop3.unknown_command; flow:to_server; sid:1;)");
  EXPECT_THAT(rule.app_layer_events,
              ElementsAre(Pop3Event::kTooManyTransactions, Pop3Event::kRequestTooLong,
                          Pop3Event::kIncorrectArgumentCount, Pop3Event::kUnknownCommand));
  EXPECT_THAT(ParseOk(Rule("app-layer-event:pop3.response_too_long; sid:1;")).app_layer_events,
              ElementsAre(Pop3Event::kResponseTooLong));
}

TEST(AppLayerEventTest, PopguardEvents) {
  EXPECT_THAT(ParseOk(Rule("app-layer-event:pop3.bad_status_token; sid:1;")).app_layer_events,
              ElementsAre(Pop3Event::kBadStatusToken));
  EXPECT_THAT(ParseOk(Rule("app-layer-event:pop3.reassembly_overlap_different_data; sid:1;"))
                  .app_layer_events,
              ElementsAre(Pop3Event::kReassemblyOverlapDifferentData));

  // Every popguard anomaly name (agent/pop3/event.h) is an event, and the
  // name round-trips through Pop3EventName.
  const std::pair<const char*, Pop3Event> kOwn[] = {
      {"bad_status_token", Pop3Event::kBadStatusToken},
      {"unterminated_line", Pop3Event::kUnterminatedLine},
      {"sasl_decode_failure", Pop3Event::kSaslDecodeFailure},
      {"unsolicited_response", Pop3Event::kUnsolicitedResponse},
      {"stls_command_injection", Pop3Event::kStlsCommandInjection},
      {"stls_response_injection", Pop3Event::kStlsResponseInjection},
      {"lf_without_cr", Pop3Event::kLfWithoutCr},
      {"reassembly_overlap_different_data", Pop3Event::kReassemblyOverlapDifferentData},
      {"event_budget_exceeded", Pop3Event::kEventBudgetExceeded},
  };
  for (const auto& [name, event] : kOwn) {
    EXPECT_THAT(
        ParseOk(Rule("app-layer-event:pop3." + std::string(name) + "; sid:1;")).app_layer_events,
        ElementsAre(event))
        << name;
    EXPECT_EQ(Pop3EventName(event), name);
  }

  // Events tied to one direction refuse the other; the others take either.
  EXPECT_THAT(ErrorOf(Rule("app-layer-event:pop3.bad_status_token; flow:to_server; sid:1;")),
              HasSubstr("app-layer-event pop3.bad_status_token is server-to-client data"));
  EXPECT_THAT(ErrorOf(Rule("app-layer-event:pop3.stls_command_injection; flow:to_client; sid:1;")),
              HasSubstr("app-layer-event pop3.stls_command_injection is client-to-server data"));
  ParseOk(Rule("app-layer-event:pop3.lf_without_cr; flow:to_server; sid:1;"));
  ParseOk(Rule("app-layer-event:pop3.reassembly_overlap_different_data; flow:to_client; sid:1;"));
}

TEST(AppLayerEventTest, Errors) {
  EXPECT_EQ(ErrorOf(Rule("app-layer-event:pop3.bad_thing; sid:1;")),
            "t.rules:1: sid 1: app-layer-event 'pop3.bad_thing' is not a POP3 event (known: "
            "pop3.too_many_transactions, pop3.request_too_long, pop3.incorrect_argument_count, "
            "pop3.unknown_command, pop3.response_too_long, pop3.bad_status_token, "
            "pop3.unterminated_line, pop3.sasl_decode_failure, pop3.unsolicited_response, "
            "pop3.stls_command_injection, pop3.stls_response_injection, pop3.lf_without_cr, "
            "pop3.reassembly_overlap_different_data, pop3.event_budget_exceeded)");
  EXPECT_THAT(ErrorOf(Rule("app-layer-event:smtp.invalid_reply; sid:1;")),
              HasSubstr("app-layer-event 'smtp.invalid_reply' is not a POP3 event"));
  EXPECT_THAT(ErrorOf(Rule("app-layer-event:pop3.response_too_long; flow:to_server; sid:1;")),
              HasSubstr("app-layer-event pop3.response_too_long is server-to-client data but the "
                        "rule says flow:to_server"));
}

// ---------------------------------------------------------------- refused

TEST(RefusedOptionTest, NamedWithReason) {
  EXPECT_EQ(ErrorOf(Rule(R"(content:"a"; byte_jump:2,0; sid:77;)")),
            "t.rules:1: sid 77: unsupported option 'byte_jump': cursor jumps by values read from "
            "the stream are not supported");
  EXPECT_THAT(ErrorOf(Rule(R"(content:"a"; http_uri; sid:77;)")),
              HasSubstr("unsupported option 'http_uri': it inspects another protocol, not POP3"));
  EXPECT_THAT(ErrorOf(Rule(R"(dns.query; content:"a"; sid:77;)")),
              HasSubstr("unsupported option 'dns.query'"));
  EXPECT_THAT(ErrorOf(Rule(R"(file_data; content:"a"; sid:77;)")),
              HasSubstr("unsupported option 'file_data': message bodies are not a rule buffer"));
  EXPECT_THAT(ErrorOf(Rule("ttl:3; sid:77;")), HasSubstr("unsupported option 'ttl'"));
  EXPECT_THAT(ErrorOf(Rule("flowint:a,+,1; sid:77;")), HasSubstr("unsupported option 'flowint'"));
  EXPECT_EQ(ErrorOf(Rule("frobnicate; sid:77;")), "t.rules:1: sid 77: unknown option 'frobnicate'");
  // Without a readable sid the line alone names the rule.
  EXPECT_EQ(ErrorOf(Rule("frobnicate; sid:x;")), "t.rules:1: unknown option 'frobnicate'");
}

}  // namespace
}  // namespace popguard::rules

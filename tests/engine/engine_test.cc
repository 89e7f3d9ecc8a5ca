// The rule engine on hand-made units: keyword semantics (Suricata's), the
// Hyperscan prefilter never hiding a match, per-rule conditions, refusals.
#include "agent/detect/engine.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/detect/kernel_plan.h"
#include "agent/detect/matcher.h"

namespace popguard::detect {
namespace {

CompileResult CompileText(const std::string& text) {
  rules::ParseResult parsed = rules::ParseRules(text, "test.rules", rules::Variables());
  for (const auto& e : parsed.errors) ADD_FAILURE() << e.ToString();
  return Compile(parsed.rules);
}

std::unique_ptr<RuleEngine> Engine(const std::string& text) {
  CompileResult result = CompileText(text);
  for (const auto& e : result.errors) ADD_FAILURE() << e.ToString();
  return std::move(result.engine);
}

Unit Command(std::string_view verb, std::string_view args, std::string& storage) {
  storage = std::string(verb) + (args.empty() ? "" : " ") + std::string(args) + "\r\n";
  Unit unit;
  unit.direction = pop3::Direction::kToServer;
  unit.Set(rules::Buffer::kPayload, storage);
  unit.Set(rules::Buffer::kPop3Command, verb);
  unit.Set(rules::Buffer::kPop3Args, args);
  return unit;
}

Unit Response(std::string_view line, std::string& storage) {
  storage = std::string(line) + "\r\n";
  Unit unit;
  unit.direction = pop3::Direction::kToClient;
  unit.Set(rules::Buffer::kPayload, storage);
  unit.Set(rules::Buffer::kPop3Response, line);
  return unit;
}

FlowTuple Tuple() {
  FlowTuple t;
  t.client = *rules::ParseIpAddress("192.0.2.10");
  t.server = *rules::ParseIpAddress("198.51.100.1");
  t.client_port = 40000;
  t.server_port = 110;
  return t;
}

std::vector<uint32_t> Sids(RuleEngine& engine, const Unit& unit, FlowRuleState* state = nullptr) {
  FlowRuleState local;
  std::vector<Alert> alerts;
  engine.Inspect(unit, Tuple(), state ? state : &local, &alerts);
  std::vector<uint32_t> sids;
  for (const Alert& a : alerts) sids.push_back(a.rule->sid);
  return sids;
}

TEST(MatcherTest, FindPatternHonoursWindowAndCase) {
  EXPECT_EQ(FindPattern("abcABC", "ABC", 0, 6, false), 3u);
  EXPECT_EQ(FindPattern("abcABC", "ABC", 0, 6, true), 0u);
  EXPECT_EQ(FindPattern("abcABC", "ABC", 1, 6, true), 3u);
  EXPECT_EQ(FindPattern("abcABC", "ABC", 0, 5, false), std::string_view::npos);
  EXPECT_EQ(FindPattern("ab", "abc", 0, 2, false), std::string_view::npos);
}

TEST(MatcherTest, LenientBase64StopsAtFirstForeignByte) {
  EXPECT_EQ(DecodeBase64Lenient("aGVsbG8="), "hello");
  EXPECT_EQ(DecodeBase64Lenient("aGVsbG8gd29ybGQ"), "hello wor");
  EXPECT_EQ(DecodeBase64Lenient("aGVs!bG8="), "hel");
  EXPECT_EQ(DecodeBase64Lenient(""), "");
}

TEST(EngineTest, ContentOnStickyBuffersAndPayload) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"a\"; pop3.command; content:\"UIDL\"; pop3.args; "
      "content:\"-\"; startswith; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"b\"; content:\"UIDL -\"; depth:6; sid:2;)\n"
      "alert tcp any any -> any any (msg:\"c\"; content:\"uidl\"; nocase; content:\"-\"; "
      "distance:1; within:2; sid:3;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("UIDL", "-1", s)), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(Sids(*engine, Command("UIDL", "1-", s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("UIDL", "1", s)), (std::vector<uint32_t>{}));
}

TEST(EngineTest, RelativeMatchesBacktrackToLaterOccurrences) {
  // The first "A" is not followed by "B" within 1 byte; the second is.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"a\"; content:\"A\"; content:\"B\"; distance:0; "
      "within:1; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"p\"; content:\"A\"; pcre:\"/^B/R\"; sid:2;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("XA", "AxAB", s)), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Sids(*engine, Command("XA", "AxAC", s)), (std::vector<uint32_t>{}));
}

TEST(EngineTest, NegatedContentAndIsdataat) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"long user\"; pop3.command; content:\"USER\"; "
      "pop3.args; content:!\"@\"; isdataat:10; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"rel\"; content:\"USER \"; isdataat:5,relative; "
      "sid:2;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("USER", "aaaaaaaaaaa", s)), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Sids(*engine, Command("USER", "aaaaaaaaaa@", s)), (std::vector<uint32_t>{2}));
  // "USER abc\r\n": 5 bytes follow "USER " (abc CR LF is 5): Suricata's
  // relative isdataat is offset + n <= length.
  EXPECT_EQ(Sids(*engine, Command("USER", "abc", s)), (std::vector<uint32_t>{2}));
  EXPECT_EQ(Sids(*engine, Command("USER", "ab", s)), (std::vector<uint32_t>{}));
}

TEST(EngineTest, SizeTestsThatNeedNoCursorTurnCandidatesAway) {
  // dsize, bsize and absolute isdataat, negated or not, are tested before
  // the rest of the rule as buffer lengths; their verdicts must not move.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"short args\"; pop3.command; content:\"USER\"; "
      "pop3.args; isdataat:!4; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"long line\"; content:\"USER\"; dsize:>13; sid:2;)\n"
      "alert tcp any any -> any any (msg:\"range\"; pop3.command; content:\"USER\"; "
      "pop3.args; bsize:3<>6; sid:3;)\n");
  std::string s;
  // "USER abcd\r\n" is 11 bytes.
  EXPECT_EQ(Sids(*engine, Command("USER", "abcd", s)), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(Sids(*engine, Command("USER", "abc", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("USER", "abcde", s)), (std::vector<uint32_t>{3}));
  EXPECT_EQ(Sids(*engine, Command("USER", "abcdefg", s)), (std::vector<uint32_t>{2}));
  EXPECT_EQ(Sids(*engine, Command("USER", "abcdef", s)), (std::vector<uint32_t>{}));
}

TEST(EngineTest, KeywordsThatReadNoEarlierMatchAreTestedOnTheirOwn) {
  // No keyword is relative, so each holds or not by itself: a content that
  // is absent settles the rule without trying every place of the others
  // (Eval's backtracking would hit its step limit here and count a loss).
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"all\"; content:\"a\"; content:\"aa\"; "
      "content:\"aaa\"; content:\"c\"; content:!\"d\"; pcre:\"/a{3}c/\"; sid:1;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("X", std::string(300, 'a'), s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("X", std::string(300, 'a') + "c", s)),
            (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("X", std::string(300, 'a') + "cd", s)),
            (std::vector<uint32_t>{}));
  EXPECT_EQ(engine->counters().match.step_limit_hits, 0u);
}

TEST(EngineTest, PcreWithoutContentIsPrefilteredAndConfirmed) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"fmt\"; pop3.args; pcre:\"/%[0-9]*[nsxp]/\"; "
      "sid:1;)\n"
      "alert tcp any any -> any any (msg:\"xmode\"; pop3.args; pcre:\"/ ^ - \\d /x\"; sid:2;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("RETR", "%s%s", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("RETR", "%d", s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("RETR", "-1", s)), (std::vector<uint32_t>{2}));
}

TEST(EngineTest, RulesPinnedToVerbsMatchEveryVerbTheirKeywordsAccept) {
  // Looked up by the unit's verb, not scanned for: case folding (nocase,
  // /i, a verb not upper-cased) and `$` before a final newline must not
  // hide a match the keywords accept.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"bsize\"; pop3.command; content:\"uidl\"; nocase; "
      "bsize:4; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"ends\"; pop3.command; content:\"UIDL\"; "
      "startswith; endswith; sid:2;)\n"
      "alert tcp any any -> any any (msg:\"words\"; pop3.command; pcre:\"/^(?:retr|top)$/i\"; "
      "sid:3;)\n"
      "alert tcp any any -> any any (msg:\"dollar\"; pop3.command; pcre:\"/^RETR$/\"; sid:4;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("UIDL", "", s)), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Sids(*engine, Command("uidl", "", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("UIDLX", "", s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("RETR", "1", s)), (std::vector<uint32_t>{3, 4}));
  EXPECT_EQ(Sids(*engine, Command("Top", "1 2", s)), (std::vector<uint32_t>{3}));
  EXPECT_EQ(Sids(*engine, Command("RETR\n", "", s)), (std::vector<uint32_t>{3, 4}));
  EXPECT_EQ(Sids(*engine, Command("RETRX", "", s)), (std::vector<uint32_t>{}));
}

TEST(EngineTest, OneByteLiteralsIndexAsHyperscanWould) {
  // Every pattern of the payload is one byte: read through a byte table,
  // caseless letters in both cases, each rule once however often its byte
  // occurs.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"q\"; content:\"q\"; nocase; fast_pattern; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"pct\"; pop3.args; content:\"%\"; sid:2;)\n"
      "alert tcp any any -> any any (msg:\"Z\"; content:\"Z\"; fast_pattern; sid:3;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("QUIT", "", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("quit", "%%", s)), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Sids(*engine, Command("XZ", "z", s)), (std::vector<uint32_t>{3}));
  EXPECT_EQ(Sids(*engine, Command("RETR", "1", s)), (std::vector<uint32_t>{}));
}

TEST(EngineTest, ByteTableFindsNamedBytesAtEveryPlaceAndLength) {
  // A named byte at any place of a line of any length is found, and only
  // there, with few named bytes and with many.
  auto few = Engine(
      "alert tcp any any -> any any (msg:\"pct\"; pop3.args; content:\"%\"; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"dash\"; pop3.args; content:\"-\"; sid:2;)\n");
  std::string many_rules;
  for (char c : std::string("%-!#&()+,")) {
    many_rules += "alert tcp any any -> any any (msg:\"b\"; pop3.args; content:\"";
    many_rules += c;
    many_rules += "\"; sid:" + std::to_string(c == '%' ? 1 : 100 + c) + ";)\n";
  }
  auto many = Engine(many_rules);
  std::string s;
  for (size_t length = 1; length <= 40; ++length) {
    const std::string plain(length, 'a');
    EXPECT_TRUE(Sids(*few, Command("USER", plain, s)).empty()) << length;
    EXPECT_TRUE(Sids(*many, Command("USER", plain, s)).empty()) << length;
    for (size_t at = 0; at < length; ++at) {
      std::string args = plain;
      args[at] = '%';
      EXPECT_EQ(Sids(*few, Command("USER", args, s)), (std::vector<uint32_t>{1}))
          << length << " " << at;
      EXPECT_EQ(Sids(*many, Command("USER", args, s)), (std::vector<uint32_t>{1}))
          << length << " " << at;
      args[length - 1 - at] = '-';
      const std::vector<uint32_t> both =
          length - 1 - at == at ? std::vector<uint32_t>{2} : std::vector<uint32_t>{1, 2};
      EXPECT_EQ(Sids(*few, Command("USER", args, s)), both) << length << " " << at;
    }
  }
}

// Response lines made of the bytes that matter, short and long, each
// checked against PCRE2's own verdict on `regex` (/i) as a to_client rule.
void ExpectPcre2VerdictsOnResponses(RuleEngine& engine, const std::string& regex) {
  rules::PcreMatch pcre;
  pcre.regex = regex;
  pcre.modifiers.caseless = true;
  std::string error;
  auto reference = CompiledRegex::Compile(pcre, &error);
  ASSERT_TRUE(reference) << error;
  const std::string alphabet = "+OoKk \t-0123456789Lx";
  uint64_t state = 42;
  auto next = [&] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return static_cast<size_t>(state >> 33);
  };
  size_t fired = 0;
  for (int i = 0; i < 4000; ++i) {
    // Most lines start as a server's do, so that the prefix matters.
    std::string line = next() % 4 ? "+OK" : "";
    const size_t length = next() % 12;
    for (size_t k = 0; k < length; ++k) line += alphabet[next() % alphabet.size()];
    std::string s;
    size_t begin = 0;
    size_t end = 0;
    const bool want = reference->Search(line, 0, &begin, &end) == CompiledRegex::Result::kMatch;
    fired += want;
    EXPECT_EQ(Sids(engine, Response(line, s)),
              want ? std::vector<uint32_t>{1} : std::vector<uint32_t>{})
        << "'" << line << "'";
  }
  EXPECT_GT(fired, 20u);
}

std::unique_ptr<RuleEngine> ResponseRule(const std::string& regex) {
  return Engine(std::string("alert tcp any any -> any any (msg:\"r\"; flow:to_client; "
                            "pop3.response; pcre:\"/") +
                regex + "/i\"; sid:1;)\n");
}

TEST(EngineTest, AnchoredDfaDecidesResponsesWithoutScanning) {
  // A response database of start-anchored pcres the DFA can take is walked,
  // never scanned, and hides no match.
  const std::string regex = "^\\+OK[ \\t]+(?:-[0-9]|[0-9]{3,})";
  auto engine = ResponseRule(regex);
  ExpectPcre2VerdictsOnResponses(*engine, regex);
  EXPECT_EQ(engine->counters().automaton_runs, 4000u);
  EXPECT_EQ(engine->counters().scans, 0u);
}

TEST(EngineTest, AnchoredScreenSparesScansAndHidesNoMatch) {
  // `\b` is beyond the DFA, so this database is scanned, but only lines
  // whose first bytes can begin a match.
  const std::string regex = "^\\+OK[ \\t]+(?:-[0-9]|[0-9]{3,})\\b";
  auto engine = ResponseRule(regex);
  ExpectPcre2VerdictsOnResponses(*engine, regex);
  EXPECT_EQ(engine->counters().automaton_runs, 0u);
  EXPECT_GT(engine->counters().screened, 1000u);
  EXPECT_GT(engine->counters().scans, 100u);
  // A database that also holds a pattern anchored nowhere gets no screen.
  auto mixed = Engine(std::string("alert tcp any any -> any any (msg:\"r\"; flow:to_client; "
                                  "pop3.response; pcre:\"/") +
                      regex +
                      "/i\"; sid:1;)\n"
                      "alert tcp any any -> any any (msg:\"u\"; flow:to_client; "
                      "pop3.response; pcre:\"/x[0-9]{4}/\"; sid:2;)\n");
  std::string s;
  EXPECT_EQ(Sids(*mixed, Response("+OK Logged in", s)), std::vector<uint32_t>{});
  EXPECT_EQ(Sids(*mixed, Response("+OK Logged in x1234", s)), std::vector<uint32_t>{2});
  EXPECT_EQ(mixed->counters().screened, 0u);
  EXPECT_EQ(mixed->counters().automaton_runs, 0u);
}

TEST(EngineTest, PcreTriedAtEveryOffsetIsGuardedWithoutChangingVerdicts) {
  // No first byte or anchor narrows where these can start, so Hyperscan in
  // prefilter mode screens the subject before PCRE2: relative or not, the
  // verdict is PCRE2's; a negated pcre goes to PCRE2 unscreened.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"long or %n\"; pop3.args; pcre:\"/^.{8}|%n/s\"; "
      "sid:1;)\n"
      "alert tcp any any -> any any (msg:\"not\"; pop3.args; pcre:!\"/^.{8}|%n/s\"; sid:2;)\n"
      "alert tcp any any -> any any (msg:\"rel\"; pop3.args; content:\"x\"; "
      "pcre:\"/.{2}y/sR\"; sid:3;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("USER", "12345678", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("USER", "a%nb", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("USER", "abc", s)), (std::vector<uint32_t>{2}));
  EXPECT_EQ(Sids(*engine, Command("USER", "x12y", s)), (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(Sids(*engine, Command("USER", "x1y", s)), (std::vector<uint32_t>{2}));
  EXPECT_EQ(Sids(*engine, Command("USER", "y12x1y", s)), (std::vector<uint32_t>{2}));
}

TEST(EngineTest, ChoiceOfWordsPcreMatchesAsPcre2Would) {
  // Such a pcre is matched by comparison, not by PCRE2: the anchors, the
  // final newline, /i, /E, /m and /R must mean what they mean to PCRE2.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"i\"; pop3.args; pcre:\"/^(?:ab|CD)$/i\"; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"E\"; pop3.args; pcre:\"/^ab$/E\"; sid:2;)\n"
      "alert tcp any any -> any any (msg:\"m\"; pop3.args; pcre:\"/^ab$/m\"; sid:3;)\n"
      "alert tcp any any -> any any (msg:\"R\"; pop3.args; content:\"x\"; "
      "pcre:\"/^(?:ab)$/R\"; sid:4;)\n"
      "alert tcp any any -> any any (msg:\"not a choice\"; pop3.command; pcre:\"/^AB|CD$/\"; "
      "sid:5;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("X", "AB", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("X", "cd\n", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Command("X", "ab", s)), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(Sids(*engine, Command("X", "ab\n", s)), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(Sids(*engine, Command("X", "zz\nab", s)), (std::vector<uint32_t>{3}));
  EXPECT_EQ(Sids(*engine, Command("X", "abc", s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("X", "xab", s)), (std::vector<uint32_t>{4}));
  EXPECT_EQ(Sids(*engine, Command("X", "xabc", s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("ABX", "", s)), (std::vector<uint32_t>{5}));
  EXPECT_EQ(Sids(*engine, Command("XCD", "", s)), (std::vector<uint32_t>{5}));
}

TEST(EngineTest, ByteTestBsizeAndBase64) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"stat\"; pop3.response; content:\"+OK \"; "
      "byte_test:10,>,4000000000,0,relative,string,dec; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"bsize\"; pop3.args; bsize:>8; sid:2;)\n"
      "alert tcp any any -> any any (msg:\"b64\"; pop3.args; base64_decode; "
      "base64_data; content:\"root\"; sid:3;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Response("+OK 4294967296 100", s)), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Sids(*engine, Response("+OK 1000000000 100", s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("USER", "123456789", s)), (std::vector<uint32_t>{2}));
  EXPECT_EQ(Sids(*engine, Command("AUTH", "cm9vdA==", s)), (std::vector<uint32_t>{3}));
  EXPECT_EQ(Sids(*engine, Command("AUTH", "dXNlcg==", s)), (std::vector<uint32_t>{}));
}

TEST(EngineTest, FlowDirectionAndHeaderPorts) {
  auto engine = Engine(
      "alert tcp any any -> any 110 (msg:\"to server\"; flow:to_server; content:\"+OK\"; "
      "sid:1;)\n"
      "alert tcp any 110 -> any any (msg:\"to client\"; flow:to_client; content:\"+OK\"; "
      "sid:2;)\n"
      "alert tcp any any -> any 995 (msg:\"other port\"; content:\"+OK\"; sid:3;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Response("+OK hi", s)), (std::vector<uint32_t>{2}));
  EXPECT_EQ(Sids(*engine, Command("+OK", "", s)), (std::vector<uint32_t>{1}));
}

TEST(EngineTest, PortSelectorsMatchAsWrittenAtEveryPort) {
  // The engine tests ports against a bitmap per selector; each selector
  // form must take exactly the ports Selector::Matches takes, on either
  // side of a header and both ways of `<>`.
  const std::vector<std::string> selectors = {
      "any",           "110",         "!110",           "[110,995]",
      "[1:1024,!110]", "[!110,!995]", "![100:200,995]", "[[110,111],!111]",
      ":1024",         "60000:"};
  const std::vector<uint16_t> ports = {0,   1,   99,  100,  109,  110,   111,   200,  201,
                                       994, 995, 996, 1024, 1025, 59999, 60000, 65535};
  for (const std::string& selector : selectors) {
    const std::string text = "alert tcp any any -> any " + selector +
                             " (msg:\"dst\"; content:\"A\"; sid:1;)\n"
                             "alert tcp any " +
                             selector +
                             " <> any any (msg:\"src both ways\"; content:\"A\"; sid:2;)\n";
    auto engine = Engine(text);
    ASSERT_TRUE(engine) << selector;
    const rules::PortSelector& reference = engine->rules()[0].header.destination_ports;
    for (uint16_t server : ports) {
      for (uint16_t client : {uint16_t{40000}, server}) {
        FlowTuple tuple = Tuple();
        tuple.server_port = server;
        tuple.client_port = client;
        std::string storage;
        FlowRuleState state;
        std::vector<Alert> alerts;
        engine->Inspect(Command("A", "", storage), tuple, &state, &alerts);
        std::vector<uint32_t> want;
        if (reference.Matches(server)) want.push_back(1);
        if (reference.Matches(client) || reference.Matches(server)) want.push_back(2);
        std::vector<uint32_t> got;
        for (const Alert& a : alerts) got.push_back(a.rule->sid);
        EXPECT_EQ(got, want) << selector << " server " << server << " client " << client;
      }
    }
  }
}

TEST(EngineTest, FlowbitsChainAcrossUnitsOfOneFlow) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"set\"; pop3.command; content:\"AUTH\"; "
      "flowbits:set,auth; flowbits:noalert; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"isset\"; pop3.response; content:\"-ERR\"; "
      "flowbits:isset,auth; sid:2;)\n");
  std::string s;
  FlowRuleState flow;
  EXPECT_EQ(Sids(*engine, Response("-ERR no", s), &flow), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Command("AUTH", "X", s), &flow), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, Response("-ERR no", s), &flow), (std::vector<uint32_t>{2}));
  FlowRuleState other;
  EXPECT_EQ(Sids(*engine, Response("-ERR no", s), &other), (std::vector<uint32_t>{}));
}

TEST(EngineTest, DetectionFilterAndThresholdCountPerSourceInTime) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"df\"; pop3.command; content:\"PASS\"; "
      "detection_filter:track by_src, count 3, seconds 60; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"limit\"; pop3.command; content:\"PASS\"; "
      "threshold:type limit, track by_src, count 1, seconds 60; sid:2;)\n");
  std::string s;
  std::vector<std::vector<uint32_t>> seen;
  for (int i = 0; i < 5; ++i) {
    Unit unit = Command("PASS", "x", s);
    unit.timestamp_ns = int64_t{i} * 1'000'000'000;
    seen.push_back(Sids(*engine, unit));
  }
  EXPECT_EQ(seen, (std::vector<std::vector<uint32_t>>{{2}, {}, {}, {1}, {1}}));
  // A new window starts after 60 s.
  Unit later = Command("PASS", "x", s);
  later.timestamp_ns = int64_t{200} * 1'000'000'000;
  EXPECT_EQ(Sids(*engine, later), (std::vector<uint32_t>{2}));
}

TEST(EngineTest, ThresholdsCountWhatTheyTrackOnly) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"flow\"; pop3.command; content:\"PASS\"; "
      "threshold:type limit, track by_flow, count 1, seconds 60; sid:1;)\n"
      "alert tcp any any -> any any (msg:\"src\"; pop3.command; content:\"PASS\"; "
      "threshold:type limit, track by_src, count 1, seconds 60; sid:2;)\n");
  std::string s;
  auto sids = [&](const FlowTuple& tuple) {
    FlowRuleState state;
    std::vector<Alert> alerts;
    engine->Inspect(Command("PASS", "x", s), tuple, &state, &alerts);
    std::vector<uint32_t> out;
    for (const Alert& a : alerts) out.push_back(a.rule->sid);
    return out;
  };
  FlowTuple first = Tuple();
  EXPECT_EQ(sids(first), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(sids(first), (std::vector<uint32_t>{}));
  // Another client port is another flow from the same source.
  FlowTuple other_port = first;
  other_port.client_port = 40001;
  EXPECT_EQ(sids(other_port), (std::vector<uint32_t>{1}));
  // An IPv4 address is its first four bytes, whatever follows them.
  FlowTuple same_address = first;
  same_address.client.bytes[12] = 0xff;
  EXPECT_EQ(sids(same_address), (std::vector<uint32_t>{}));
  // The same bytes as an IPv6 address are another source.
  FlowTuple v6 = first;
  v6.client.v6 = true;
  EXPECT_EQ(sids(v6), (std::vector<uint32_t>{1, 2}));
}

TEST(EngineTest, ThresholdStateIsBoundedAndWhatItGivesUpIsCounted) {
  // One entry per source: at the bound, entries whose window has passed
  // make room first; only when too few have are live ones given up, a
  // sixteenth of the bound at once (so a flood of new sources pays for a
  // sweep once per batch), and counted.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"t\"; pop3.command; content:\"USER\"; "
      "detection_filter:track by_src, count 1, seconds 60; sid:1;)\n");
  std::string s;
  const Unit base = Command("USER", "x", s);
  auto from = [&](uint32_t source, int64_t seconds) {
    FlowTuple tuple = Tuple();
    tuple.client.bytes = {10, static_cast<uint8_t>(source >> 16), static_cast<uint8_t>(source >> 8),
                          static_cast<uint8_t>(source)};
    Unit unit = base;
    unit.timestamp_ns = seconds * 1'000'000'000;
    FlowRuleState state;
    std::vector<Alert> alerts;
    engine->Inspect(unit, tuple, &state, &alerts);
    return alerts.size();
  };
  const uint32_t kBound = 65536;
  for (uint32_t source = 0; source < kBound; ++source) ASSERT_EQ(from(source, 0), 0u);
  // Every source is remembered: a second hit from the first passes the filter.
  EXPECT_EQ(from(0, 1), 1u);
  EXPECT_EQ(engine->counters().threshold_evictions, 0u);
  const uint32_t kBatch = kBound / 16;
  EXPECT_EQ(from(kBound, 2), 0u);
  EXPECT_EQ(engine->counters().threshold_evictions, kBatch);
  // The batch's room takes that many new sources without another loss.
  for (uint32_t source = kBound + 1; source < kBound + kBatch; ++source) {
    ASSERT_EQ(from(source, 3), 0u);
  }
  EXPECT_EQ(engine->counters().threshold_evictions, kBatch);
  // A minute on, every window has passed: room is made without a loss.
  EXPECT_EQ(from(kBound + kBatch, 70), 0u);
  EXPECT_EQ(engine->counters().threshold_evictions, kBatch);
  EXPECT_EQ(from(kBound + kBatch, 71), 1u);
}

TEST(EngineTest, AppLayerEventRulesFireOnTheirAnomalyOnly) {
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"bad status\"; "
      "app-layer-event:pop3.bad_status_token; sid:1;)\n");
  Unit unit;
  unit.direction = pop3::Direction::kToClient;
  unit.anomaly = rules::Pop3Event::kBadStatusToken;
  EXPECT_EQ(Sids(*engine, unit), (std::vector<uint32_t>{1}));
  unit.anomaly = rules::Pop3Event::kResponseTooLong;
  EXPECT_EQ(Sids(*engine, unit), (std::vector<uint32_t>{}));
}

TEST(EngineTest, FlagsRulesSeeAClientsOpeningSynAndNothingElse) {
  // A flags test is honoured when it can only match a SYN without ACK, the
  // one segment the sensor reports; it sees segment units only, and
  // segment units meet no other rule.
  auto engine = Engine(
      "alert tcp any any -> any 110 (msg:\"rapid\"; flags:S,12; flow:to_server; "
      "threshold:type both, track by_src, count 3, seconds 120; sid:1;)\n"
      "alert tcp any any -> any 110 (msg:\"exact syn\"; flags:S; flow:stateless; sid:2;)\n"
      "alert tcp any any -> any 110 (msg:\"any line\"; content:\"U\"; sid:3;)\n");
  ASSERT_TRUE(engine);
  EXPECT_TRUE(engine->tests_tcp_flags());
  auto syn = [](uint8_t flags, int64_t seconds) {
    Unit unit;
    unit.direction = pop3::Direction::kToServer;
    unit.timestamp_ns = seconds * 1'000'000'000;
    unit.tcp_flags = flags;
    return unit;
  };
  FlowRuleState state;
  EXPECT_EQ(Sids(*engine, syn(0x02, 0), &state), (std::vector<uint32_t>{2}));
  // ECN setup (SYN with ECE and CWR): the ,12 mask ignores both bits.
  EXPECT_EQ(Sids(*engine, syn(0xc2, 1), &state), (std::vector<uint32_t>{}));
  EXPECT_EQ(Sids(*engine, syn(0x02, 2), &state), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Sids(*engine, syn(0x02, 3), &state), (std::vector<uint32_t>{2}));
  // Not an opening SYN: no flags rule passes.
  EXPECT_EQ(Sids(*engine, syn(0x12, 4), &state), (std::vector<uint32_t>{}));
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("USER", "u", s), &state), (std::vector<uint32_t>{3}));

  auto none = Engine("alert tcp any any -> any 110 (msg:\"x\"; content:\"x\"; sid:1;)\n");
  EXPECT_FALSE(none->tests_tcp_flags());

  CompileResult refused = CompileText(
      "alert tcp any any -> any 110 (msg:\"a\"; flags:S+; sid:11;)\n"
      "alert tcp any any -> any 110 (msg:\"b\"; flags:S; content:\"x\"; sid:12;)\n"
      "alert tcp any any -> any 110 (msg:\"c\"; flags:S; flow:established; sid:13;)\n"
      "alert tcp any any -> any 110 (msg:\"d\"; flags:S; flow:to_client; sid:14;)\n"
      "alert tcp any any -> any 110 (msg:\"e\"; flags:!S; sid:15;)\n"
      "alert tcp any any -> any 110 (msg:\"f\"; flags:*SF; sid:16;)\n"
      "alert tcp any any -> any 110 (msg:\"g\"; flags:S; flowbits:set,x; sid:17;)\n"
      "pass tcp any any -> any 110 (msg:\"h\"; flags:S; sid:18;)\n");
  std::vector<std::string> why;
  for (const auto& e : refused.errors) why.push_back(e.ToString());
  ASSERT_EQ(why.size(), 8u);
  EXPECT_NE(why[6].find("sid 17: flowbits with flags"), std::string::npos);
  EXPECT_NE(why[7].find("sid 18: action 'pass' is not supported"), std::string::npos);
  EXPECT_NE(why[0].find("sid 11: flags: popguard sees TCP flags only on"), std::string::npos);
  EXPECT_NE(why[1].find("sid 12: flags cannot be combined with payload"), std::string::npos);
  EXPECT_NE(why[2].find("sid 13: flags with flow:established can never match"), std::string::npos);
  EXPECT_NE(why[3].find("sid 14: flags with flow:to_client"), std::string::npos);
  EXPECT_NE(why[4].find("sid 15: flags: popguard sees"), std::string::npos);
  EXPECT_NE(why[5].find("sid 16: flags: popguard sees"), std::string::npos);
}

TEST(EngineTest, RefusesWhatItCannotHonourNamingRuleAndOption) {
  CompileResult result = CompileText(
      "alert tcp any any -> any 110 (msg:\"ack\"; flags:A+; sid:5;)\n"
      "alert tcp any any -> any 110 (msg:\"mix\"; app-layer-event:pop3.unknown_command; "
      "content:\"x\"; sid:6;)\n"
      "alert tcp any any -> any 110 (msg:\"bad re\"; pcre:\"/(/\"; sid:7;)\n"
      "alert tcp any any -> any 110 (msg:\"ok\"; content:\"x\"; sid:8;)\n");
  ASSERT_EQ(result.errors.size(), 3u);
  EXPECT_EQ(result.errors[0].ToString().rfind(
                "test.rules:1: sid 5: flags: popguard sees TCP flags only on a client's opening "
                "SYN",
                0),
            0u)
      << result.errors[0].ToString();
  EXPECT_NE(result.errors[1].ToString().find("sid 6: app-layer-event"), std::string::npos);
  EXPECT_NE(result.errors[2].ToString().find("sid 7: pcre"), std::string::npos);
  ASSERT_TRUE(result.engine);
  ASSERT_EQ(result.engine->rules().size(), 1u);
  EXPECT_EQ(result.engine->rules()[0].sid, 8u);
}

TEST(EngineTest, BacktrackingIsBoundedAndCounted) {
  // Every "a" is a candidate for the first content and none completes.
  auto engine = Engine(
      "alert tcp any any -> any any (msg:\"deep\"; content:\"a\"; content:\"a\"; distance:0; "
      "content:\"a\"; distance:0; content:\"b\"; distance:0; sid:1;)\n");
  std::string s;
  EXPECT_EQ(Sids(*engine, Command("X", std::string(200, 'a'), s)), (std::vector<uint32_t>{}));
  EXPECT_EQ(engine->counters().match.step_limit_hits, 1u);
}

}  // namespace
}  // namespace popguard::detect

namespace popguard::detect {
namespace {

std::vector<rules::Rule> ParseOnly(const std::string& text) {
  rules::ParseResult parsed = rules::ParseRules(text, "plan.rules", rules::Variables());
  for (const auto& e : parsed.errors) ADD_FAILURE() << e.ToString();
  return parsed.rules;
}

TEST(KernelPlanTest, ArgumentLengthRulesSetVerbLimits) {
  KernelPlan plan = PlanKernel(
      ParseOnly("drop tcp any any -> any 110 (msg:\"u\"; pop3.command; content:\"USER\"; bsize:4; "
                "pop3.args; bsize:>254; sid:1;)\n"
                "alert tcp any any -> any 110 (msg:\"p\"; pop3.command; content:\"PASS\"; "
                "pop3.args; isdataat:511; sid:2;)\n"
                "alert tcp any any -> any 110 (msg:\"p2\"; pop3.command; content:\"PASS\"; "
                "pop3.args; bsize:>=300; sid:3;)\n"),
      pg_config{});
  // "USER " + 254 bytes + CR LF is the longest line sid 1 lets through.
  EXPECT_EQ(plan.config.verb_hard_limit[PG_VERB_USER], 4u + 1 + 254 + 2);
  EXPECT_EQ(plan.config.verb_threshold[PG_VERB_USER], 0u);
  // The tighter of two rules on one verb wins.
  EXPECT_EQ(plan.config.verb_threshold[PG_VERB_PASS], 4u + 1 + 299 + 2);
  EXPECT_EQ(plan.config.verb_hard_limit[PG_VERB_PASS], 0u);
  EXPECT_EQ(plan.config.server_line_threshold, 512u);
  EXPECT_EQ(plan.config.body_inspection, 0u);
  ASSERT_EQ(plan.notes.size(), 3u);
  EXPECT_EQ(plan.notes[0],
            "sid 1: USER lines over 261 bytes are dropped in the kernel in prevent mode");
}

// A rule that also needs something else would have the kernel drop lines
// the rule does not match.
TEST(KernelPlanTest, RulesWithMoreConditionsSetNothing) {
  KernelPlan plan = PlanKernel(
      ParseOnly("drop tcp any any -> any 110 (msg:\"u\"; pop3.command; content:\"UIDL\"; "
                "pop3.args; bsize:>0; pcre:!\"/^\\d{1,10}$/\"; sid:1;)\n"
                "drop tcp any any -> any 110 (msg:\"x\"; pop3.command; content:\"XTND\"; "
                "pop3.args; bsize:>128; sid:2;)\n"),
      pg_config{});
  for (uint32_t v = 0; v < PG_VERB_MAX; ++v) {
    EXPECT_EQ(plan.config.verb_hard_limit[v], 0u) << v;
    EXPECT_EQ(plan.config.verb_threshold[v], 0u) << v;
  }
  EXPECT_TRUE(plan.notes.empty());
}

TEST(KernelPlanTest, SmallestBudgetsAreTheFloors) {
  pg_config config = SmallestBudgets(pg_config{});
  EXPECT_EQ(config.flow_budget_burst, kMinFlowBudgetBurst);
  EXPECT_EQ(config.flow_budget_rate, kMinFlowBudgetRate);
  EXPECT_EQ(config.global_budget_burst, kMinGlobalBudgetBurst);
  EXPECT_EQ(config.global_budget_rate, kMinGlobalBudgetRate);
}

}  // namespace
}  // namespace popguard::detect

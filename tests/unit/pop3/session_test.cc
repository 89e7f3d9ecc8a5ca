#include "agent/pop3/session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/pop3/sasl.h"
#include "tests/unit/pop3/test_util.h"

namespace popguard::pop3 {
namespace {

using std::string_literals::operator""s;
using test::Anomalies;
using test::Client;
using test::CountAnomaly;
using test::Describe;
using test::EncodeBase64;
using test::OfKind;
using test::RunScript;
using test::Server;
using test::Step;

constexpr char kGreeting[] = "+OK Dovecot (Debian) ready.\r\n";

const Response& ResponseOf(const Event& event) { return std::get<Response>(event.payload); }
const Command& CommandOf(const Event& event) { return std::get<Command>(event.payload); }
const SaslMessage& SaslOf(const Event& event) { return std::get<SaslMessage>(event.payload); }

// The last response event that answers `verb`.
const Response& Answer(const std::vector<Event>& events, std::string_view verb) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->kind == EventKind::kResponse && ResponseOf(*it).answers == verb) return ResponseOf(*it);
  }
  ADD_FAILURE() << "no response to " << verb;
  static const Response kNone;
  return kNone;
}

const std::string kRetrBody =
    "From: bob@example.com\r\n"
    "Subject: hi\r\n"
    "\r\n"
    "+OK this line is body, not a status\r\n"
    "..leading dot, stuffed\r\n";

std::vector<Step> DovecotSession() {
  return {
      Server(kGreeting),
      Client("CAPA\r\n"),
      Server("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
             "STLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"),
      Client("USER alice@example.com\r\n"),
      Server("+OK\r\n"),
      Client("PASS correct horse battery staple\r\n"),
      Server("+OK Logged in.\r\n"),
      Client("STAT\r\n"),
      Server("+OK 2 320\r\n"),
      Client("LIST\r\n"),
      Server("+OK 2 messages:\r\n1 120\r\n2 200\r\n.\r\n"),
      Client("UIDL\r\n"),
      Server("+OK\r\n1 000000015a1b2c3d\r\n2 000000025a1b2c3e\r\n.\r\n"),
      Client("RETR 1\r\n"),
      Server("+OK 120 octets\r\n" + kRetrBody + ".\r\n"),
      Client("TOP 2 0\r\n"),
      Server("+OK\r\nFrom: carol@example.com\r\n\r\n.\r\n"),
      Client("DELE 1\r\n"),
      Server("+OK Marked to be deleted.\r\n"),
      Client("QUIT\r\n"),
      Server("+OK Logging out, messages deleted.\r\n"),
  };
}

TEST(SessionTest, DovecotLikeSession) {
  const std::vector<Event> events = RunScript(DovecotSession());
  EXPECT_EQ(Describe(events), (std::vector<std::string>{
                                  "R +OK greeting",
                                  "C CAPA",
                                  "R +OK CAPA 9/87",
                                  "C USER alice@example.com",
                                  "R +OK USER",
                                  "C PASS correct horse battery staple",
                                  "R +OK PASS",
                                  "C STAT",
                                  "R +OK STAT",
                                  "C LIST",
                                  "R +OK LIST 2/14",
                                  "C UIDL",
                                  "R +OK UIDL 2/40",
                                  "C RETR 1",
                                  "R +OK RETR 5/" + std::to_string(kRetrBody.size()),
                                  "C TOP 2 0",
                                  "R +OK TOP 2/27",
                                  "C DELE 1",
                                  "R +OK DELE",
                                  "C QUIT",
                                  "R +OK QUIT",
                              }));

  EXPECT_EQ(Answer(events, "USER").state, SessionState::kAuthorization);
  EXPECT_EQ(Answer(events, "PASS").state, SessionState::kTransaction);
  EXPECT_EQ(Answer(events, "QUIT").state, SessionState::kUpdate);
  EXPECT_EQ(Answer(events, "STAT").scan, (ScanListing{2, 320}));
  EXPECT_EQ(Answer(events, "LIST").listing_max, (ScanListing{2, 200}));
  EXPECT_EQ(Answer(events, "LIST").listing_malformed, 0u);
  EXPECT_EQ(Answer(events, "LIST").text, "2 messages:");
  EXPECT_EQ(Answer(events, "RETR").text, "120 octets");
  EXPECT_EQ(Answer(events, "DELE").text, "Marked to be deleted.");
  EXPECT_FALSE(Answer(events, "DELE").multi_line);

  const std::vector<Event> commands = OfKind(events, EventKind::kCommand);
  EXPECT_EQ(CommandOf(commands[3]).state, SessionState::kTransaction) << "STAT after login";
  EXPECT_EQ(CommandOf(commands[2]).verb_id, Verb::kPass);
  EXPECT_EQ(CommandOf(commands[2]).arg_count, 4u);
}

TEST(SessionTest, OffsetsPointAtTheFirstByteOfEachLine) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("USER a\r\nPASS b\r\n"),
      Server("+OK\r\n+OK\r\n"),
      Client("LIST\r\n"),
      Server("+OK\r\n1 10\r\n.\r\n"),
  });
  const size_t greeting = std::string(kGreeting).size();
  std::vector<std::pair<Direction, uint64_t>> offsets;
  for (const Event& event : events) offsets.emplace_back(event.direction, event.offset);
  EXPECT_EQ(offsets, (std::vector<std::pair<Direction, uint64_t>>{
                         {Direction::kToClient, 0},
                         {Direction::kToServer, 0},
                         {Direction::kToServer, 8},
                         {Direction::kToClient, greeting},
                         {Direction::kToClient, greeting + 5},
                         {Direction::kToServer, 16},
                         {Direction::kToClient, greeting + 10},
                     }));
}

TEST(SessionTest, PipelinedCommandsAndResponsesInOneChunkEach) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("USER a\r\nPASS b\r\nSTAT\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nNOOP\r\nQUIT\r\n"),
      Server("+OK\r\n+OK in\r\n+OK 1 5\r\n+OK 1 5\r\n+OK\r\n1 uid-1\r\n.\r\n"
             "+OK\r\nHello\r\n.\r\n+OK\r\n+OK bye\r\n"),
  });
  EXPECT_EQ(Describe(events), (std::vector<std::string>{
                                  "R +OK greeting",
                                  "C USER a",
                                  "C PASS b",
                                  "C STAT",
                                  "C LIST 1",
                                  "C UIDL",
                                  "C RETR 1",
                                  "C NOOP",
                                  "C QUIT",
                                  "R +OK USER",
                                  "R +OK PASS",
                                  "R +OK STAT",
                                  "R +OK LIST",
                                  "R +OK UIDL 1/9",
                                  "R +OK RETR 1/7",
                                  "R +OK NOOP",
                                  "R +OK QUIT",
                              }));
  EXPECT_EQ(Answer(events, "LIST").scan, (ScanListing{1, 5}));
  EXPECT_EQ(Answer(events, "QUIT").state, SessionState::kUpdate);
}

TEST(SessionTest, ErrIsAlwaysOneLine) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("RETR 9\r\nLIST\r\nCAPA\r\n"),
      Server("-ERR no such message\r\n-ERR not logged in\r\n+OK\r\nUSER\r\n.\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C RETR 9", "C LIST", "C CAPA",
                                      "R -ERR RETR", "R -ERR LIST", "R +OK CAPA 1/6"}));
  EXPECT_EQ(Answer(events, "RETR").text, "no such message");
}

TEST(SessionTest, EveryByteAloneGivesTheSameEvents) {
  const std::string long_user = "USER " + std::string(300, 'u') + "\r\n";
  const std::vector<std::vector<Step>> scripts = {
      DovecotSession(),
      {Server(kGreeting), Client("AUTH PLAIN\r\n"), Server("+ \r\n"),
       Client(EncodeBase64("\0alice\0secret"s) + "\r\n"), Server("+OK\r\n")},
      {Server(kGreeting), Client(long_user + "xyzzy\nLIST 1 2\r\n"),
       Server("+OK " + std::string(600, 'x') + "\r\n+YES\r\n-ERR\n-ERR\r\n+OK\r\n")},
      {Server(kGreeting), Client("STLS\r\nUSER evil\r\n"),
       Server("+OK Begin TLS\r\n+OK injected\r\n"), Client("\x16\x03\x01"), Server("\x16\x03\x03")},
  };
  SessionOptions small;
  small.max_line = 200;
  for (const std::vector<Step>& script : scripts) {
    for (const SessionOptions& options : {SessionOptions{}, small}) {
      const std::vector<Event> chunked = RunScript(script, options);
      const std::vector<Event> bytewise = RunScript(script, options, /*bytewise=*/true);
      EXPECT_EQ(Describe(chunked), Describe(bytewise));
      EXPECT_TRUE(chunked == bytewise);
    }
  }
}

TEST(SessionTest, MixedCaseAndTabs) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("uSeR\talice@example.com\r\npass  s3cret\r\n"),
      Server("+OK\r\n+ok logged in\r\n"),
      Client("list \t 1\r\ntop  1\t\t10  \r\nRetr 2\r\n"),
      Server("+OK 1 10\r\n+OK\r\nX\r\n.\r\n+OK\r\n.\r\n"),
  });
  EXPECT_TRUE(Anomalies(events).empty()) << testing::PrintToString(Describe(events));
  const std::vector<Event> commands = OfKind(events, EventKind::kCommand);
  ASSERT_EQ(commands.size(), 5u);
  EXPECT_EQ(CommandOf(commands[0]).verb, "USER");
  EXPECT_EQ(CommandOf(commands[0]).raw_verb, "uSeR");
  EXPECT_EQ(CommandOf(commands[0]).args, "alice@example.com");
  EXPECT_EQ(CommandOf(commands[0]).line, "uSeR\talice@example.com");
  EXPECT_EQ(CommandOf(commands[3]).verb_id, Verb::kTop);
  EXPECT_EQ(CommandOf(commands[3]).args, "1\t\t10  ");
  EXPECT_EQ(CommandOf(commands[3]).normalized_args, "1 10");
  EXPECT_EQ(CommandOf(commands[3]).arg_count, 2u);
  EXPECT_EQ(CommandOf(commands[4]).verb, "RETR");
  EXPECT_EQ(Answer(events, "PASS").status, ResponseStatus::kOk);
  EXPECT_EQ(Answer(events, "PASS").state, SessionState::kTransaction);
  EXPECT_EQ(Answer(events, "TOP").body_lines, 1u);
  EXPECT_EQ(Answer(events, "RETR").body_lines, 0u);
}

// --- Suricata's events -------------------------------------------------------

TEST(AnomalyTest, RequestTooLongAbove256BytesWithCrlf) {
  const std::string at_limit = "USER " + std::string(256 - 7, 'a') + "\r\n";
  const std::string over = "USER " + std::string(257 - 7, 'a') + "\r\n";
  ASSERT_EQ(at_limit.size(), 256u);
  EXPECT_EQ(CountAnomaly(RunScript({Client(at_limit)}), anomaly::kRequestTooLong), 0u);
  const std::vector<Event> events = RunScript({Client("NOOP\r\n" + over)});
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"C NOOP", "A request_too_long",
                                                        "C USER " + over.substr(5, 250)}));
  EXPECT_EQ(events[1].offset, 6u);
  EXPECT_EQ(CommandOf(events[2]).line_length, 257u);
}

TEST(AnomalyTest, RequestTooLongIsReportedBeforeTheLineEnds) {
  const std::vector<Event> events = RunScript({Client("PASS " + std::string(3000, 'p'))});
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"A request_too_long"}));
}

TEST(AnomalyTest, IncorrectArgumentCount) {
  const auto fires = [](const std::string& line) {
    return CountAnomaly(RunScript({Client(line + "\r\n")}), anomaly::kIncorrectArgumentCount) == 1;
  };
  for (const char* bad : {"USER", "USER a b", "PASS", "PASS  ", "APOP mrose", "LIST 1 2",
                          "UIDL 1 2", "RETR", "DELE 1 2", "TOP 1", "STAT 1", "NOOP x", "RSET x",
                          "QUIT now", "CAPA x", "STLS x", "AUTH", "AUTH PLAIN = extra"}) {
    EXPECT_TRUE(fires(bad)) << bad;
  }
  for (const char* good : {"USER a", "PASS a", "PASS pass with spaces", "APOP mrose abc", "LIST",
                           "LIST 1", "UIDL", "UIDL 1", "RETR 1", "DELE 1", "TOP 1 10", "STAT",
                           "NOOP", "RSET", "QUIT", "CAPA", "STLS", "AUTH PLAIN", "AUTH PLAIN ="}) {
    EXPECT_FALSE(fires(good)) << good;
  }
}

TEST(AnomalyTest, UnknownCommand) {
  const std::vector<Event> events =
      RunScript({Client("XTND XMIT\r\nxyzzy\r\n\r\n uidl\r\nuidl\r\n")});
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"C XTND XMIT", "A unknown_command", "C XYZZY",
                                      "A unknown_command", "C ", "A unknown_command", "C  uidl",
                                      "A unknown_command", "C UIDL"}));
}

TEST(AnomalyTest, ResponseTooLongAbove512BytesWithCrlf) {
  const std::string at_limit = "+OK " + std::string(512 - 6, 'x') + "\r\n";
  const std::string over = "-ERR " + std::string(513 - 7, 'x') + "\r\n";
  ASSERT_EQ(at_limit.size(), 512u);
  EXPECT_EQ(CountAnomaly(RunScript({Server(at_limit)}), anomaly::kResponseTooLong), 0u);
  const std::vector<Event> events =
      RunScript({Server(kGreeting), Client("NOOP\r\n"), Server(over)});
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"R +OK greeting", "C NOOP",
                                                        "A response_too_long", "R -ERR NOOP"}));
  EXPECT_EQ(ResponseOf(events[3]).line_length, 513u);
}

TEST(AnomalyTest, ResponseTooLongIgnoresBodyLines) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("RETR 1\r\n"),
      Server("+OK\r\n" + std::string(1000, 'b') + "\r\n.\r\n"),
  });
  EXPECT_TRUE(Anomalies(events).empty());
}

TEST(AnomalyTest, TooManyTransactions) {
  SessionOptions options;
  options.max_pending_commands = 3;
  EXPECT_EQ(CountAnomaly(RunScript({Client("NOOP\r\nNOOP\r\nNOOP\r\n")}, options),
                         anomaly::kTooManyTransactions),
            0u);
  const std::vector<Event> events =
      RunScript({Server(kGreeting), Client("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"),
                 Server("+OK\r\n+OK\r\n+OK\r\n+OK\r\n")},
                options);
  EXPECT_EQ(Describe(events), (std::vector<std::string>{
                                  "R +OK greeting", "C NOOP", "C NOOP", "C NOOP", "C NOOP",
                                  "A too_many_transactions", "C NOOP", "R +OK NOOP", "R +OK NOOP",
                                  "R +OK NOOP", "R +OK", "A unsolicited_response"}));
}

TEST(AnomalyTest, TooManyTransactionsAtSuricatasDefault) {
  std::string noops;
  for (int i = 0; i < 256; ++i) noops += "NOOP\r\n";
  EXPECT_EQ(CountAnomaly(RunScript({Client(noops)}), anomaly::kTooManyTransactions), 0u);
  EXPECT_EQ(CountAnomaly(RunScript({Client(noops + "NOOP\r\n")}), anomaly::kTooManyTransactions),
            1u);
}

// --- popguard's anomalies ----------------------------------------------------

TEST(AnomalyTest, BadStatusToken) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("NOOP\r\nNOOP\r\nNOOP\r\n"),
      Server("+YES\r\n+OK\r\n+ not a sasl exchange\r\n-ERR\r\n* OK\r\n+ok\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C NOOP", "C NOOP", "C NOOP", "R +YES NOOP",
                                      "A bad_status_token", "R +OK NOOP", "R + NOOP",
                                      "A bad_status_token", "R -ERR NOOP", "R * NOOP",
                                      "A bad_status_token", "R +ok NOOP"}));
  EXPECT_EQ(ResponseOf(events[4]).status, ResponseStatus::kBad);
  EXPECT_EQ(ResponseOf(events[7]).status, ResponseStatus::kContinuation);
}

TEST(AnomalyTest, BadGreetingLeavesTheGreetingPending) {
  const std::vector<Event> events = RunScript({Server("* OK IMAP4rev1 ready\r\n+OK POP3\r\n")});
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R *", "A bad_status_token", "R +OK greeting"}));
}

TEST(AnomalyTest, UnterminatedLine) {
  SessionOptions options;
  options.max_line = 100;
  EXPECT_EQ(
      CountAnomaly(RunScript({Server(std::string(100, 'x'))}, options), anomaly::kUnterminatedLine),
      0u);
  const std::vector<Event> events =
      RunScript({Server(kGreeting), Client("NOOP\r\n"), Server("-ERR " + std::string(9000, 'e')),
                 Server(std::string(1000, 'e') + "\r\n")},
                options);
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C NOOP", "A unterminated_line",
                                      "A response_too_long", "R -ERR NOOP"}))
      << "in the order the bytes crossed the limits";
  const Response& response = ResponseOf(events.back());
  EXPECT_TRUE(response.truncated);
  EXPECT_EQ(response.line_length, 10007u);
  EXPECT_EQ(response.line.size(), 100u);
}

TEST(AnomalyTest, UnterminatedLineInsideABody) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("RETR 1\r\n"),
      Server("+OK\r\nshort\r\n" + std::string(5000, 'b') + "\r\n.\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C RETR 1", "A unterminated_line",
                                      "R +OK RETR 2/5009"}));
}

TEST(AnomalyTest, SaslDecodeFailure) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("AUTH LOGIN\r\n"),
      Server("+ VXNlcm5hbWU6\r\n"),
      Client("not base64!\r\n"),
      Server("+ %%%\r\n"),
      Client("=\r\n"),
      Server("-ERR\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C AUTH LOGIN", "R + AUTH",
                                      "SS ok Username:", "SC bad not base64!",
                                      "A sasl_decode_failure", "R + AUTH", "SS bad %%%",
                                      "A sasl_decode_failure", "SC ok ", "R -ERR AUTH"}));
}

TEST(AnomalyTest, UnsolicitedResponse) {
  EXPECT_EQ(Describe(RunScript({Server(std::string(kGreeting) + "+OK again\r\n")})),
            (std::vector<std::string>{"R +OK greeting", "R +OK", "A unsolicited_response"}));
  EXPECT_TRUE(
      Anomalies(RunScript({Server(kGreeting), Client("NOOP\r\n"), Server("+OK\r\n")})).empty());
}

TEST(AnomalyTest, LfWithoutCr) {
  EXPECT_TRUE(Anomalies(RunScript({Client("USER a\r\n")})).empty());
  const std::vector<Event> events = RunScript({
      Server("+OK hi\n"),
      Client("USER a\n"),
      Server("+OK\r\n"),
      Client("RETR 1\r\n"),
      Server("+OK\r\nbare\nbare again\nok\r\n.\n"),
  });
  EXPECT_EQ(
      Describe(events),
      (std::vector<std::string>{"R +OK greeting", "A lf_without_cr", "C USER a", "A lf_without_cr",
                                "R +OK USER", "C RETR 1", "A lf_without_cr", "R +OK RETR 3/20"}));
}

// --- SASL ----------------------------------------------------------------------

TEST(SaslTest, AuthPlainWithInitialResponse) {
  const std::string token = EncodeBase64("\0alice@example.com\0secret"s);
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("AUTH PLAIN " + token + "\r\n"),
      Server("+OK Logged in.\r\n"),
      Client("STAT\r\n"),
  });
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"R +OK greeting", "C AUTH PLAIN " + token,
                                                        "SC ok \0alice@example.com\0secret"s,
                                                        "R +OK AUTH", "C STAT"}));
  EXPECT_TRUE(SaslOf(events[2]).initial_response);
  EXPECT_EQ(SaslOf(events[2]).mechanism, "PLAIN");
  EXPECT_EQ(ResponseOf(events[3]).state, SessionState::kTransaction);
  EXPECT_EQ(CommandOf(events[4]).state, SessionState::kTransaction);
}

TEST(SaslTest, AuthLoginWithChallenges) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("auth login\r\n"),
      Server("+ VXNlcm5hbWU6\r\n"),
      Client("YWxpY2U=\r\n"),
      Server("+ UGFzc3dvcmQ6\r\n"),
      Client("c2VjcmV0\r\n"),
      Server("+OK\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C AUTH login", "R + AUTH",
                                      "SS ok Username:", "SC ok alice", "R + AUTH",
                                      "SS ok Password:", "SC ok secret", "R +OK AUTH"}));
  EXPECT_EQ(SaslOf(events[4]).mechanism, "LOGIN");
  EXPECT_EQ(ResponseOf(events.back()).state, SessionState::kTransaction);
}

TEST(SaslTest, Xoauth2TokenOf2000BytesIsNotTooLong) {
  std::string plain = "user=alice@example.com\1auth=Bearer ";
  plain += std::string(1500 - plain.size() - 2, 'T') + "\1\1";
  const std::string token = EncodeBase64(plain);
  ASSERT_EQ(token.size(), 2000u);
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("AUTH XOAUTH2\r\n"),
      Server("+ \r\n"),
      Client(token + "\r\n"),
      Server("+OK Welcome.\r\n"),
  });
  EXPECT_TRUE(Anomalies(events).empty()) << testing::PrintToString(Describe(events));
  const std::vector<Event> sasl = OfKind(events, EventKind::kSaslClient);
  ASSERT_EQ(sasl.size(), 1u);
  EXPECT_EQ(SaslOf(sasl[0]).decoded, plain);
  EXPECT_EQ(SaslOf(sasl[0]).mechanism, "XOAUTH2");
}

TEST(SaslTest, LongInitialResponseOnTheAuthLineIsTooLong) {
  // RFC 5034 section 4: a client must not send an initial response that
  // makes the AUTH command longer than 255 octets.
  const std::string token = EncodeBase64(std::string(1500, 'T'));
  const std::vector<Event> events = RunScript({Client("AUTH XOAUTH2 " + token + "\r\n")});
  EXPECT_EQ(CountAnomaly(events, anomaly::kRequestTooLong), 1u);
  EXPECT_EQ(SaslOf(OfKind(events, EventKind::kSaslClient)[0]).decoded, std::string(1500, 'T'));
}

TEST(SaslTest, CramMd5) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("AUTH CRAM-MD5\r\n"),
      Server("+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
      Client("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"),
      Server("+OK CRAM authentication successful\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C AUTH CRAM-MD5", "R + AUTH",
                                      "SS ok <1896.697170952@postoffice.reston.mci.net>",
                                      "SC ok tim b913a602c7eda7a495b4e6e7334d3890", "R +OK AUTH"}));
  EXPECT_FALSE(SaslOf(events[3]).libcurl_decoded.has_value()) << "only for DIGEST-MD5";
}

TEST(SaslTest, CancelledWithStar) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("AUTH LOGIN\r\n"),
      Server("+ VXNlcm5hbWU6\r\n"),
      Client("*\r\n"),
      Server("-ERR Authentication cancelled\r\n"),
      Client("USER alice\r\n"),
      Server("+OK\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C AUTH LOGIN", "R + AUTH",
                                      "SS ok Username:", "SC *", "R -ERR AUTH", "C USER alice",
                                      "R +OK USER"}));
  EXPECT_EQ(ResponseOf(events[5]).state, SessionState::kAuthorization);
}

TEST(SaslTest, BareAuthListsMechanisms) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("AUTH\r\n"),
      Server("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"),
      Client("USER a\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C AUTH", "A incorrect_argument_count",
                                      "R +OK AUTH 2/14", "C USER a"}));
  EXPECT_EQ(ResponseOf(events[3]).state, SessionState::kAuthorization);
}

// The exchange of Suricata's pop3-auth-01 test: an empty "+ " challenge
// after AUTH XOAUTH2, then a bare base64 line, then a normal transaction.
TEST(SaslTest, EmptyChallengeThenBase64Line) {
  const std::string token = EncodeBase64("user=joe\1auth=Bearer AAAA\1\1");
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("CAPA\r\n"),
      Server("+OK Capability list follows\r\nUSER\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n"),
      Client("AUTH XOAUTH2\r\n"),
      Server("+ \r\n"),
      Client(token + "\r\n"),
      Server("+OK Welcome.\r\n"),
      Client("STAT\r\nLIST\r\nUIDL\r\nQUIT\r\n"),
      Server("+OK 1 308661\r\n+OK 1 messages (308661 bytes)\r\n1 308661\r\n.\r\n"
             "+OK\r\n1 GmailId123456789\r\n.\r\n+OK\r\n"),
  });
  EXPECT_EQ(
      Describe(events),
      (std::vector<std::string>{"R +OK greeting", "C CAPA", "R +OK CAPA 2/38", "C AUTH XOAUTH2",
                                "R + AUTH", "SS ok ", "SC ok user=joe\1auth=Bearer AAAA\1\1",
                                "R +OK AUTH", "C STAT", "C LIST", "C UIDL", "C QUIT", "R +OK STAT",
                                "R +OK LIST 1/10", "R +OK UIDL 1/20", "R +OK QUIT"}));
  EXPECT_EQ(Answer(events, "STAT").scan, (ScanListing{1, 308661}));
  EXPECT_EQ(Answer(events, "LIST").listing_max, (ScanListing{1, 308661}));
  EXPECT_EQ(Answer(events, "QUIT").state, SessionState::kUpdate);
}

TEST(SaslTest, DigestMd5RealmFor123And124Bytes) {
  for (size_t length : {123u, 124u}) {
    const std::string challenge = "realm=\"" + std::string(length, 'R') +
                                  "\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",algorithm=md5-sess";
    const std::vector<Event> events = RunScript({
        Server(kGreeting),
        Client("AUTH DIGEST-MD5\r\n"),
        Server("+ " + EncodeBase64(challenge) + "\r\n"),
    });
    const std::vector<Event> sasl = OfKind(events, EventKind::kSaslServer);
    ASSERT_EQ(sasl.size(), 1u);
    EXPECT_EQ(SaslOf(sasl[0]).decoded, challenge);
    EXPECT_EQ(SaslOf(sasl[0]).libcurl_decoded, challenge);
    ASSERT_TRUE(SaslOf(sasl[0]).realm.has_value());
    EXPECT_EQ(SaslOf(sasl[0]).realm->size(), length);
    EXPECT_TRUE(Anomalies(events).empty());
  }
}

TEST(SaslTest, DigestMd5LibcurlInputKeepsTheCrOfTheLine) {
  // libcurl decodes its line buffer, which still holds the CR: "ZGV\r" is a
  // full quantum to it, while "ZGV" alone is a partial one and is dropped.
  for (const auto& [line_end, expected] :
       {std::pair{"\r\n"s, "abc\x01\x91\x95"s}, std::pair{"\n"s, "abc"s}}) {
    const std::vector<Event> events = RunScript({
        Server(kGreeting),
        Client("AUTH DIGEST-MD5\r\n"),
        Server("+ YWJjZGV" + line_end),
    });
    const std::vector<Event> challenges = OfKind(events, EventKind::kSaslServer);
    ASSERT_EQ(challenges.size(), 1u);
    EXPECT_EQ(SaslOf(challenges[0]).libcurl_decoded, expected);
    EXPECT_EQ(SaslOf(challenges[0]).realm, std::nullopt);
  }
}

TEST(SaslTest, DigestMd5ObfuscatedForStrictDecodersStillYieldsLibcurlsRealm) {
  // Junk after the base64 makes a strict decoder refuse the challenge;
  // libcurl stops at the padding, or decodes the junk quantum to NULs after
  // the realm, so the realm it copies is intact.
  const std::string realm(130, 'R');
  const std::string encoded =
      EncodeBase64("realm=\"" + realm + "\",nonce=\"n\",algorithm=md5-sess");
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("AUTH digest-md5\r\n"),
      Server("+  " + encoded + "****\r\n"),
  });
  const std::vector<Event> challenges = OfKind(events, EventKind::kSaslServer);
  ASSERT_EQ(challenges.size(), 1u);
  const SaslMessage& sasl = SaslOf(challenges[0]);
  EXPECT_FALSE(sasl.decoded_ok);
  EXPECT_EQ(CountAnomaly(events, anomaly::kSaslDecodeFailure), 1u);
  ASSERT_TRUE(sasl.realm.has_value());
  EXPECT_EQ(*sasl.realm, std::string(kLibcurl728RealmMax, 'R'));
}

// --- STLS ------------------------------------------------------------------------

TEST(StlsTest, AcceptedStopsParsing) {
  std::vector<Event> events;
  Session session([&events](const Event& event) { events.push_back(event); });
  session.OnServerData(kGreeting);
  session.OnClientData("STLS\r\n");
  EXPECT_FALSE(session.tls_started());
  session.OnServerData("+OK Begin TLS negotiation\r\n");
  EXPECT_TRUE(session.tls_started());
  session.OnClientData("\x16\x03\x01\x02\x00USER x\r\n"s);
  session.OnServerData("\x16\x03\x03\x00\x5a+OK\r\n"s);
  session.OnClientData("QUIT\r\n");
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C STLS", "R +OK STLS", "TLS"}));
  EXPECT_EQ(events.back().offset, std::string(kGreeting).size() + 27);
}

TEST(StlsTest, RefusedParsingContinues) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("STLS\r\n"),
      Server("-ERR TLS not available\r\n"),
      Client("USER alice\r\n"),
      Server("+OK\r\n"),
  });
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"R +OK greeting", "C STLS", "R -ERR STLS",
                                                        "C USER alice", "R +OK USER"}));
}

TEST(StlsTest, CommandInjectedBeforeTheAnswer) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("STLS\r\nUSER evil\r\nPASS evil\r\n"),
      Server("+OK Begin TLS\r\n"),
      Client("\x16\x03\x01"),
      Server("+OK\r\n+OK\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C STLS", "A stls_command_injection",
                                      "C USER evil", "C PASS evil", "R +OK STLS", "TLS"}));
  EXPECT_EQ(events[2].offset, 6u);
}

TEST(StlsTest, CommandInjectedAndRefused) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("STLS\r\nCAPA\r\n"),
      Server("-ERR\r\n+OK\r\nSTLS\r\n.\r\n"),
      Client("NOOP\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C STLS", "A stls_command_injection",
                                      "C CAPA", "R -ERR STLS", "R +OK CAPA 1/6", "C NOOP"}));
}

TEST(StlsTest, ResponseInjectedAfterTheOk) {
  const std::string injected = "+OK Logged in\r\n";
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("STLS\r\n"),
      Server("+OK Begin TLS\r\n" + injected),
      Server("-ERR still cleartext\r\n"),
      Client("\x16\x03\x01"),
      Server("\x16\x03\x03"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{
                "R +OK greeting", "C STLS", "R +OK STLS", "TLS", "A stls_response_injection",
                "R +OK", "A unsolicited_response", "R -ERR", "A unsolicited_response"}));
  EXPECT_EQ(events[4].offset, std::string(kGreeting).size() + 15);
}

// --- Other commands ----------------------------------------------------------------

TEST(SessionTest, ApopLogsIn) {
  const std::vector<Event> events = RunScript({
      Server("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
      Client("APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
      Server("+OK maildrop has 1 message (369 octets)\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{
                "R +OK greeting", "C APOP mrose c4c9334bac560ecc979e58001b3e22fb", "R +OK APOP"}));
  EXPECT_EQ(ResponseOf(events.back()).state, SessionState::kTransaction);
}

TEST(SessionTest, FailedLoginStaysInAuthorization) {
  std::vector<Event> events;
  Session session([&events](const Event& event) { events.push_back(event); });
  session.OnServerData(kGreeting);
  session.OnClientData("USER a\r\nPASS wrong\r\n");
  session.OnServerData("+OK\r\n-ERR the password incorrect\r\n");
  EXPECT_EQ(session.state(), SessionState::kAuthorization);
  EXPECT_EQ(session.pending_commands(), 0u);
  EXPECT_EQ(Answer(events, "PASS").text, "the password incorrect");
}

TEST(SessionTest, ScanListingsExposeAbsurdNumbers) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("STAT\r\nLIST\r\nLIST 3\r\n"),
      Server("+OK 99999999999999999999999 -1\r\n"
             "+OK\r\n1 4294967296\r\n-1 20\r\n2 abc\r\n3 7 extra\r\n.\r\n"
             "+OK 3 18446744073709551616\r\n"),
  });
  const std::vector<Event> responses = OfKind(events, EventKind::kResponse);
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_EQ(ResponseOf(responses[1]).scan, std::nullopt) << "\"-1\" is not a number";
  EXPECT_EQ(ResponseOf(responses[2]).listing_max, (ScanListing{3, 4294967296u}));
  EXPECT_EQ(ResponseOf(responses[2]).listing_malformed, 2u);
  EXPECT_EQ(ResponseOf(responses[3]).scan, (ScanListing{3, UINT64_MAX}));
}

}  // namespace
}  // namespace popguard::pop3

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
                                  "RS +OK CAPA",
                                  "R +OK CAPA 9/87",
                                  "C USER alice@example.com",
                                  "R +OK USER",
                                  "C PASS correct horse battery staple",
                                  "R +OK PASS",
                                  "C STAT",
                                  "R +OK STAT",
                                  "C LIST",
                                  "RS +OK LIST",
                                  "R +OK LIST 2/14",
                                  "C UIDL",
                                  "RS +OK UIDL",
                                  "R +OK UIDL 2/40",
                                  "C RETR 1",
                                  "RS +OK RETR",
                                  "R +OK RETR 5/" + std::to_string(kRetrBody.size()),
                                  "C TOP 2 0",
                                  "RS +OK TOP",
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
                         // The LIST response's first line: its kResponseStart,
                         // then its kResponse at the "." line, which still
                         // points at the first line.
                         {Direction::kToClient, greeting + 10},
                         {Direction::kToClient, greeting + 10},
                     }));
  EXPECT_EQ(events[6].kind, EventKind::kResponseStart);
  EXPECT_EQ(events[7].kind, EventKind::kResponse);
}

TEST(SessionTest, PipelinedCommandsAndResponsesInOneChunkEach) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("USER a\r\nPASS b\r\nSTAT\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nNOOP\r\nQUIT\r\n"),
      Server("+OK\r\n+OK in\r\n+OK 1 5\r\n+OK 1 5\r\n+OK\r\n1 uid-1\r\n.\r\n"
             "+OK\r\nHello\r\n.\r\n+OK\r\n+OK bye\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{
                "R +OK greeting", "C USER a",       "C PASS b",   "C STAT",      "C LIST 1",
                "C UIDL",         "C RETR 1",       "C NOOP",     "C QUIT",      "R +OK USER",
                "R +OK PASS",     "R +OK STAT",     "R +OK LIST", "RS +OK UIDL", "R +OK UIDL 1/9",
                "RS +OK RETR",    "R +OK RETR 1/7", "R +OK NOOP", "R +OK QUIT",
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
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"R +OK greeting", "C RETR 9", "C LIST",
                                                        "C CAPA", "R -ERR RETR", "R -ERR LIST",
                                                        "RS +OK CAPA", "R +OK CAPA 1/6"}));
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
            (std::vector<std::string>{"R +OK greeting", "C RETR 1", "RS +OK RETR",
                                      "A unterminated_line", "R +OK RETR 2/5009"}));
  // The anomaly is the long body line's, after the first line's start event.
  EXPECT_EQ(events[2].offset, std::string(kGreeting).size());
  EXPECT_EQ(events[3].offset, std::string(kGreeting).size() + 5 + 7);
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
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "A lf_without_cr", "C USER a",
                                      "A lf_without_cr", "R +OK USER", "C RETR 1", "RS +OK RETR",
                                      "A lf_without_cr", "R +OK RETR 3/20"}));
  // Reported once per body, at its first bare-LF line ("bare"), which comes
  // after the first line "+OK\r\n".
  EXPECT_EQ(events[6].offset, 7u + 5u);
  EXPECT_EQ(events[7].offset, 7u + 5u + 5u);
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
                                      "RS +OK AUTH", "R +OK AUTH 2/14", "C USER a"}));
  EXPECT_EQ(ResponseOf(events[3]).state, SessionState::kAuthorization);
  EXPECT_EQ(ResponseOf(events[4]).state, SessionState::kAuthorization);
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
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{
                "R +OK greeting", "C CAPA", "RS +OK CAPA", "R +OK CAPA 2/38", "C AUTH XOAUTH2",
                "R + AUTH", "SS ok ", "SC ok user=joe\1auth=Bearer AAAA\1\1", "R +OK AUTH",
                "C STAT", "C LIST", "C UIDL", "C QUIT", "R +OK STAT", "RS +OK LIST",
                "R +OK LIST 1/10", "RS +OK UIDL", "R +OK UIDL 1/20", "R +OK QUIT"}));
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

// --- Multi-line responses: kResponseStart ---------------------------------------

// What a kResponseStart carries: its kResponse's payload before any body
// line was counted.
Response FirstLineOnly(Response response) {
  response.body_lines = 0;
  response.body_bytes = 0;
  response.listing_max.reset();
  response.listing_malformed = 0;
  return response;
}

TEST(ResponseStartTest, OneForEachMultiLineOkAtItsFirstLine) {
  const std::string login_answers = "+OK\r\nUSER\r\n.\r\n+OK\r\nPLAIN\r\n.\r\n+OK\r\n+OK in\r\n";
  const std::string before_retr =
      "+OK 1 5\r\n+OK 1 message\r\n1 5\r\n.\r\n+OK 1 5\r\n+OK\r\n1 u1\r\n.\r\n+OK 1 u1\r\n";
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("CAPA\r\nAUTH\r\nUSER a\r\nPASS b\r\n"),
      Server(login_answers),
      Client("STAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nUIDL 1\r\nRETR 1\r\nTOP 1 0\r\nNOOP\r\n"),
      Server(before_retr + "+OK 5 octets\r\nHi\r\n.\r\n+OK\r\nS: x\r\n\r\n.\r\n+OK\r\n"),
  });
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{
                "R +OK greeting", "C CAPA",         "C AUTH",         "A incorrect_argument_count",
                "C USER a",       "C PASS b",       "RS +OK CAPA",    "R +OK CAPA 1/6",
                "RS +OK AUTH",    "R +OK AUTH 1/7", "R +OK USER",     "R +OK PASS",
                "C STAT",         "C LIST",         "C LIST 1",       "C UIDL",
                "C UIDL 1",       "C RETR 1",       "C TOP 1 0",      "C NOOP",
                "R +OK STAT",     "RS +OK LIST",    "R +OK LIST 1/5", "R +OK LIST",
                "RS +OK UIDL",    "R +OK UIDL 1/6", "R +OK UIDL",     "RS +OK RETR",
                "R +OK RETR 1/4", "RS +OK TOP",     "R +OK TOP 2/8",  "R +OK NOOP"}));

  // Each start event carries the first line's fields and points where its
  // kResponse points: the first line. The next response event is that
  // kResponse (nothing else on the server side comes between).
  size_t starts = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].kind != EventKind::kResponseStart) continue;
    ++starts;
    const Response& start = ResponseOf(events[i]);
    SCOPED_TRACE(start.answers);
    EXPECT_EQ(events[i].direction, Direction::kToClient);
    EXPECT_TRUE(start.multi_line);
    EXPECT_FALSE(start.body_elided);
    EXPECT_EQ(start.body_lines, 0u);
    EXPECT_EQ(start.body_bytes, 0u);
    EXPECT_EQ(start.listing_max, std::nullopt);
    EXPECT_EQ(start.status, ResponseStatus::kOk);
    ASSERT_LT(i + 1, events.size());
    ASSERT_EQ(events[i + 1].kind, EventKind::kResponse);
    EXPECT_EQ(events[i + 1].offset, events[i].offset);
    EXPECT_EQ(start, FirstLineOnly(ResponseOf(events[i + 1])));
  }
  EXPECT_EQ(starts, 6u);

  const std::vector<Event> started = OfKind(events, EventKind::kResponseStart);
  ASSERT_EQ(started.size(), 6u);
  EXPECT_EQ(ResponseOf(started[0]).state, SessionState::kAuthorization) << "CAPA";
  EXPECT_EQ(ResponseOf(started[2]).state, SessionState::kTransaction) << "LIST";
  EXPECT_EQ(ResponseOf(started[2]).text, "1 message");
  EXPECT_EQ(ResponseOf(started[4]).text, "5 octets");
  EXPECT_EQ(ResponseOf(started[4]).line, "+OK 5 octets");
  EXPECT_EQ(ResponseOf(started[4]).line_length, 14u);
  const size_t greeting = std::string(kGreeting).size();
  EXPECT_EQ(started[0].offset, greeting);
  EXPECT_EQ(started[1].offset, greeting + 14) << "after the CAPA answer";
  EXPECT_EQ(started[4].offset, greeting + login_answers.size() + before_retr.size());
}

TEST(ResponseStartTest, NoneForErrSingleLineSaslOrTlsAnswers) {
  const std::vector<Event> events = RunScript({
      Server(kGreeting),
      Client("CAPA\r\nAUTH\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\n"),
      Server("-ERR\r\n-ERR\r\n-ERR\r\n-ERR\r\n-ERR no such message\r\n-ERR\r\n"),
      Client("LIST 1\r\nUIDL 1\r\nSTAT\r\nAUTH LOGIN\r\n"),
      Server("+OK 1 5\r\n+OK 1 u1\r\n+OK 1 5\r\n+ VXNlcm5hbWU6\r\n"),
      Client("YWxpY2U=\r\n"),
      Server("+OK\r\n+OK unsolicited\r\n"),
      Client("STLS\r\n"),
      Server("+OK Begin TLS\r\n"),
  });
  EXPECT_TRUE(OfKind(events, EventKind::kResponseStart).empty())
      << testing::PrintToString(Describe(events));
  for (const Event& response : OfKind(events, EventKind::kResponse)) {
    EXPECT_FALSE(ResponseOf(response).multi_line) << Describe(response);
  }
  EXPECT_EQ(OfKind(events, EventKind::kResponse).size(), 14u);
  EXPECT_EQ(OfKind(events, EventKind::kTlsStarted).size(), 1u);
}

TEST(ResponseStartTest, ComesWhenTheFirstLineEndsBeforeTheBody) {
  std::vector<Event> events;
  Session session([&events](const Event& event) { events.push_back(event); });
  session.OnServerData(kGreeting);
  session.OnClientData("RETR 1\r\n");
  session.OnServerData("+OK 120 octets\r");
  EXPECT_EQ(events.size(), 2u) << "the line has not ended";
  EXPECT_FALSE(session.in_body());
  session.OnServerData("\nFrom: a\r\n");
  EXPECT_EQ(Describe(events),
            (std::vector<std::string>{"R +OK greeting", "C RETR 1", "RS +OK RETR"}));
  EXPECT_TRUE(session.in_body());
  EXPECT_EQ(ResponseOf(events.back()).text, "120 octets");
  session.OnServerData("\r\n.");
  EXPECT_EQ(events.size(), 3u);
  session.OnServerData("\r\n");
  EXPECT_FALSE(session.in_body());
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"R +OK greeting", "C RETR 1", "RS +OK RETR",
                                                        "R +OK RETR 2/11"}));
}

TEST(ResponseStartTest, AfterTheFirstLinesLengthAnomaliesBeforeItsOtherAnomalies) {
  // Length anomalies come when the limit is crossed, before the event of
  // their line; the others after it (session.h), as for single-line
  // responses. The body's anomalies come after the start event.
  const std::string long_first = "+OK " + std::string(600, 'x') + "\r\n";
  const std::vector<std::vector<Step>> scripts = {
      {Server(kGreeting), Client("RETR 1\r\n"), Server(long_first + "body\r\n.\r\n")},
      {Server(kGreeting), Client("RETR 1\r\n"), Server("+OK\nbody\n.\r\n")},
  };
  const std::vector<std::vector<std::string>> expected = {
      {"R +OK greeting", "C RETR 1", "A response_too_long", "RS +OK RETR", "R +OK RETR 1/6"},
      {"R +OK greeting", "C RETR 1", "RS +OK RETR", "A lf_without_cr", "A lf_without_cr",
       "R +OK RETR 1/5"},
  };
  for (size_t i = 0; i < scripts.size(); ++i) {
    const std::vector<Event> events = RunScript(scripts[i]);
    EXPECT_EQ(Describe(events), expected[i]);
    EXPECT_TRUE(events == RunScript(scripts[i], {}, /*bytewise=*/true));
  }
  const std::vector<Event> lf = RunScript(scripts[1]);
  const size_t greeting = std::string(kGreeting).size();
  EXPECT_EQ(lf[3].offset, greeting) << "the first line's";
  EXPECT_EQ(lf[4].offset, greeting + 4) << "the body line's";
}

// --- Skipped bytes --------------------------------------------------------------

// A session fed by hand, with the events it emitted.
struct Recorder {
  std::vector<Event> events;
  Session session{[this](const Event& event) { events.push_back(event); }};
};

TEST(SkipServerBytesTest, BodyEndedEmitsTheResponseAtOnce) {
  const size_t greeting = std::string(kGreeting).size();
  Recorder r;
  r.session.OnServerData(kGreeting);
  r.session.OnClientData("RETR 1\r\nLIST 1\r\n");
  r.session.OnServerData("+OK 120 octets\r\n");
  ASSERT_TRUE(r.session.in_body());
  // The kernel kept the body, "." line included.
  r.session.SkipServerBytes(125, /*body_ended=*/true);
  EXPECT_FALSE(r.session.in_body());
  ASSERT_EQ(Describe(r.events), (std::vector<std::string>{"R +OK greeting", "C RETR 1", "C LIST 1",
                                                          "RS +OK RETR", "R +OK RETR 0/125"}));
  EXPECT_FALSE(ResponseOf(r.events[3]).body_elided);
  const Response& retr = ResponseOf(r.events[4]);
  EXPECT_TRUE(retr.multi_line);
  EXPECT_TRUE(retr.body_elided);
  EXPECT_EQ(retr.body_bytes, 125u);
  EXPECT_EQ(retr.text, "120 octets");
  EXPECT_EQ(r.events[4].offset, greeting);

  // The next server byte starts the status line answering LIST 1.
  r.session.OnServerData("+OK 1 120\r\n");
  ASSERT_EQ(r.events.size(), 6u);
  EXPECT_EQ(Describe(r.events[5]), "R +OK LIST");
  EXPECT_EQ(r.events[5].offset, greeting + 16 + 125);
  EXPECT_EQ(ResponseOf(r.events[5]).scan, (ScanListing{1, 120}));
  EXPECT_FALSE(ResponseOf(r.events[5]).multi_line);
  EXPECT_EQ(r.session.pending_commands(), 0u);
  EXPECT_TRUE(Anomalies(r.events).empty());
}

TEST(SkipServerBytesTest, BodyEndedAfterSomeLinesWereRead) {
  Recorder r;
  r.session.OnServerData(kGreeting);
  r.session.OnClientData("TOP 1 10\r\nNOOP\r\n");
  r.session.OnServerData("+OK\r\nFrom: a\r\n");
  r.session.SkipServerBytes(40, /*body_ended=*/true);
  r.session.OnServerData("+OK\r\n");
  EXPECT_EQ(Describe(r.events),
            (std::vector<std::string>{"R +OK greeting", "C TOP 1 10", "C NOOP", "RS +OK TOP",
                                      "R +OK TOP 1/49", "R +OK NOOP"}));
  EXPECT_TRUE(ResponseOf(r.events[4]).body_elided);
  EXPECT_EQ(r.events[5].offset, std::string(kGreeting).size() + 5 + 9 + 40);
}

TEST(SkipServerBytesTest, HoleInsideABodyKeepsTheBodyOpen) {
  const size_t greeting = std::string(kGreeting).size();
  Recorder r;
  r.session.OnServerData(kGreeting);
  r.session.OnClientData("RETR 1\r\nNOOP\r\n");
  r.session.OnServerData("+OK\r\nline one\r\n");
  r.session.SkipServerBytes(100, /*body_ended=*/false);
  EXPECT_TRUE(r.session.in_body());
  EXPECT_EQ(Describe(r.events.back()), "RS +OK RETR");
  // Still body: a status-like line is a body line, and "." ends the body.
  r.session.OnServerData("+OK still body\r\n");
  EXPECT_TRUE(r.session.in_body());
  EXPECT_EQ(r.events.size(), 4u);
  r.session.OnServerData(".\r\n+OK\r\n");
  EXPECT_FALSE(r.session.in_body());
  ASSERT_EQ(Describe(r.events),
            (std::vector<std::string>{"R +OK greeting", "C RETR 1", "C NOOP", "RS +OK RETR",
                                      "R +OK RETR 2/126", "R +OK NOOP"}));
  const Response& retr = ResponseOf(r.events[4]);
  EXPECT_TRUE(retr.body_elided);
  EXPECT_EQ(retr.body_bytes, 10u + 100u + 16u);
  EXPECT_EQ(r.events[4].offset, greeting);
  EXPECT_EQ(r.events[5].offset, greeting + 5 + 10 + 100 + 16 + 3);
  EXPECT_TRUE(Anomalies(r.events).empty());
}

TEST(SkipServerBytesTest, HoleInsideABodyDropsThePartialLine) {
  Recorder r;
  r.session.OnServerData(kGreeting);
  r.session.OnClientData("RETR 1\r\n");
  r.session.OnServerData("+OK\r\n.");
  r.session.SkipServerBytes(10, /*body_ended=*/false);
  // The "." before the hole is gone: this is an empty line, not the end.
  r.session.OnServerData("\r\n");
  EXPECT_TRUE(r.session.in_body());
  EXPECT_EQ(OfKind(r.events, EventKind::kResponse).size(), 1u) << "the greeting only";
  r.session.OnServerData(".\r\n");
  EXPECT_FALSE(r.session.in_body());
  EXPECT_EQ(Describe(r.events.back()).substr(0, 11), "R +OK RETR ");
}

TEST(SkipServerBytesTest, OutsideABodyDropsThePartialLine) {
  const size_t greeting = std::string(kGreeting).size();
  Recorder r;
  r.session.OnServerData(kGreeting);
  r.session.OnClientData("USER a\r\nNOOP\r\n");
  r.session.OnServerData("-ERR x");
  r.session.SkipServerBytes(10, /*body_ended=*/false);
  r.session.OnServerData("+OK\r\n");
  ASSERT_EQ(Describe(r.events),
            (std::vector<std::string>{"R +OK greeting", "C USER a", "C NOOP", "R +OK USER"}));
  EXPECT_EQ(ResponseOf(r.events[3]).line, "+OK");
  EXPECT_EQ(ResponseOf(r.events[3]).status, ResponseStatus::kOk);
  EXPECT_EQ(r.events[3].offset, greeting + 6 + 10);
  // body_ended means nothing outside a body.
  r.session.SkipServerBytes(7, /*body_ended=*/true);
  EXPECT_EQ(r.events.size(), 4u);
  EXPECT_FALSE(r.session.in_body());
  r.session.OnServerData("+OK\r\n");
  ASSERT_EQ(r.events.size(), 5u);
  EXPECT_EQ(Describe(r.events[4]), "R +OK NOOP");
  EXPECT_EQ(r.events[4].offset, greeting + 6 + 10 + 5 + 7);
  EXPECT_TRUE(Anomalies(r.events).empty());
}

TEST(SkipClientBytesTest, DropsThePartialCommandLine) {
  Recorder r;
  r.session.OnServerData(kGreeting);
  r.session.OnClientData("USER a\r\nPASS sec");
  r.session.SkipClientBytes(20);
  r.session.OnClientData("STAT\r\n");
  ASSERT_EQ(Describe(r.events), (std::vector<std::string>{"R +OK greeting", "C USER a", "C STAT"}));
  EXPECT_EQ(r.events[2].offset, 8u + 8u + 20u);
  EXPECT_EQ(CommandOf(r.events[2]).line, "STAT");
  EXPECT_EQ(r.session.pending_commands(), 2u) << "PASS was never queued";
  // Between lines only the offsets move.
  r.session.SkipClientBytes(4);
  r.session.OnClientData("NOOP\r\n");
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(Describe(r.events[3]), "C NOOP");
  EXPECT_EQ(r.events[3].offset, 8u + 8u + 20u + 6u + 4u);
  r.session.OnServerData("+OK\r\n+OK 0 0\r\n+OK\r\n");
  EXPECT_EQ(Describe(r.events),
            (std::vector<std::string>{"R +OK greeting", "C USER a", "C STAT", "C NOOP",
                                      "R +OK USER", "R +OK STAT", "R +OK NOOP"}));
  EXPECT_TRUE(Anomalies(r.events).empty());
}

// A command before any server byte: no greeting will come (suricata-verify
// pop3-auth-01 starts so), and the first server line answers the command.
TEST(GreetingTest, CommandBeforeAnyServerByteMeansNoGreeting) {
  Recorder r;
  r.session.OnClientData("CAPA\r\n");
  r.session.OnServerData("+OK Capability list follows\r\nUSER\r\n.\r\n");
  r.session.OnClientData("USER a\r\n");
  r.session.OnServerData("+OK\r\n");
  EXPECT_EQ(Describe(r.events), (std::vector<std::string>{"C CAPA", "RS +OK CAPA", "R +OK CAPA 1/6",
                                                          "C USER a", "R +OK USER"}));
  EXPECT_TRUE(Anomalies(r.events).empty());
}

TEST(GreetingTest, CommandAfterTheGreetingStartedWaitsForIt) {
  Recorder r;
  r.session.OnServerData("+OK rea");
  r.session.OnClientData("CAPA\r\n");
  r.session.OnServerData("dy\r\n+OK\r\n.\r\n");
  EXPECT_EQ(Describe(r.events), (std::vector<std::string>{"C CAPA", "R +OK greeting", "RS +OK CAPA",
                                                          "R +OK CAPA 0/0"}));
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
  EXPECT_EQ(Describe(events), (std::vector<std::string>{
                                  "R +OK greeting", "C STLS", "A stls_command_injection", "C CAPA",
                                  "R -ERR STLS", "RS +OK CAPA", "R +OK CAPA 1/6", "C NOOP"}));
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

// Where the session stands, for the kernel to take framing back: only at
// a line boundary of both streams and never around STLS.
TEST(FramingTest, OwedResponsesInOrderAtLineBoundaries) {
  using Kind = Session::ResponseKind;
  Session s([](const Event&) {});
  ASSERT_TRUE(s.Framing());
  EXPECT_EQ(s.Framing()->owed, std::vector<Kind>{Kind::kGreeting});
  s.OnServerData(kGreeting);
  s.OnClientData("LIST\r\nUIDL 1\r\nAUTH PLAIN\r\nRETR");
  EXPECT_FALSE(s.Framing()) << "the client is inside a line";
  s.OnClientData(" 1\r\n");
  ASSERT_TRUE(s.Framing());
  EXPECT_EQ(s.Framing()->owed, (std::vector<Kind>{Kind::kMulti, Kind::kSingle, Kind::kSasl, Kind::kMulti}));
  s.OnServerData("+OK 2 messages\r\n1 120\r");
  EXPECT_FALSE(s.Framing()) << "the server is inside a body line";
  s.OnServerData("\n");
  ASSERT_TRUE(s.Framing());
  EXPECT_TRUE(s.Framing()->in_body);
  s.OnServerData(".\r\n+OK 1 abc\r\n+ \r\n");
  ASSERT_TRUE(s.Framing());
  EXPECT_FALSE(s.Framing()->in_body);
  EXPECT_TRUE(s.Framing()->sasl);
  EXPECT_EQ(s.Framing()->owed, (std::vector<Kind>{Kind::kSasl, Kind::kMulti}));
  s.OnClientData("AGFsaWNlAHNlY3JldA==\r\n");
  s.OnServerData("+OK logged in\r\n");
  ASSERT_TRUE(s.Framing());
  EXPECT_FALSE(s.Framing()->sasl);
  EXPECT_EQ(s.Framing()->owed, std::vector<Kind>{Kind::kMulti});
  s.OnClientData("STLS\r\n");
  EXPECT_FALSE(s.Framing()) << "STLS is owed an answer";
}

TEST(FramingTest, NothingToOfferOnceACommandWasNotQueued) {
  SessionOptions options;
  options.max_pending_commands = 2;
  Session s([](const Event&) {}, options);
  s.OnServerData(kGreeting);
  s.OnClientData("NOOP\r\nNOOP\r\nRETR 1\r\n");  // RETR is not queued
  EXPECT_FALSE(s.Framing());
  s.OnServerData("+OK\r\n+OK\r\n");
  EXPECT_FALSE(s.Framing()) << "the owed list lacks RETR for good";
}

}  // namespace
}  // namespace popguard::pop3

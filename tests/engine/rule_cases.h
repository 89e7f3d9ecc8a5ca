// The cases of rules/popguard.rules, for the detection engine's tests to turn
// into captures: for each alerting sid, a whole POP3 dialogue (server greeting
// first, each command answered in order) that must raise that sid, and the
// closest legitimate dialogue that must not. A sid whose rule checks several
// things has one case per thing, so each branch of the rule is exercised.
//
// Unless a comment says otherwise, a fire dialogue raises no other sid of
// rules/popguard.rules and a near miss raises none at all. Some long-login
// cases (USER, PASS, APOP, AUTH lines over 256 bytes) also produce the
// parser's request_too_long anomaly, which Suricata's pop3-events.rules alert
// on when loaded. Each dialogue expects fresh detection state: 9100019 counts
// login attempts per source address across flows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace popguard::test {

// One write by one side of the connection.
struct Exchange {
  bool to_server;
  std::string bytes;
};

struct RuleCase {
  uint32_t sid;
  std::string name;
  std::vector<Exchange> fire;       // must raise `sid`
  std::vector<Exchange> near_miss;  // must not raise `sid`
};

// RFC 4648 base64, standard alphabet, padded.
inline std::string Base64(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto at = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])); };
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t group = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += kAlphabet[(group >> 6) & 63];
    out += kAlphabet[group & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    const uint32_t group = (at(i) << 16) | (rest == 2 ? at(i + 1) << 8 : 0u);
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += rest == 2 ? kAlphabet[(group >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Sids of rules that only set or clear flowbits (flowbits:noalert). They never
// raise anything themselves; 9100016's cases exercise them.
inline const std::vector<uint32_t>& NoAlertSids() {
  static const std::vector<uint32_t> sids = {9100090, 9100091};
  return sids;
}

namespace rule_cases_internal {

class Dialogue {
 public:
  Dialogue& C(std::string bytes) {
    exchanges_.push_back({true, std::move(bytes)});
    return *this;
  }
  Dialogue& S(std::string bytes) {
    exchanges_.push_back({false, std::move(bytes)});
    return *this;
  }
  // `part`'s exchanges, `times` times over.
  Dialogue& Times(int times, const Dialogue& part) {
    for (int i = 0; i < times; ++i) {
      exchanges_.insert(exchanges_.end(), part.exchanges_.begin(), part.exchanges_.end());
    }
    return *this;
  }
  Dialogue& Quit() { return C("QUIT\r\n").S("+OK Logging out.\r\n"); }
  std::vector<Exchange> Done() const { return exchanges_; }

 private:
  std::vector<Exchange> exchanges_;
};

inline std::string Repeat(std::string_view unit, size_t times) {
  std::string out;
  out.reserve(unit.size() * times);
  for (size_t i = 0; i < times; ++i) out += unit;
  return out;
}

inline Dialogue Greeted() {
  Dialogue dialogue;
  dialogue.S("+OK POP3 ready <4711.1764201600@mail.example.org>\r\n");
  return dialogue;
}

inline Dialogue LoggedIn() {
  Dialogue dialogue = Greeted();
  dialogue.C("USER alice\r\n").S("+OK\r\n").C("PASS s3cret\r\n").S("+OK Logged in.\r\n");
  return dialogue;
}

// The APOP digest of the greeting's timestamp and "s3cret" (RFC 1939 section 7).
inline constexpr char kApopDigest[] = "12c7ffde0c6725f6651e4beaa64c052a";

// A 100-byte and a 254-byte (the longest valid) e-mail address.
inline constexpr char kEmail100[] =
    "jean-baptiste.emmanuel.zorg.archives-2026@mail.customer-relations.subsidiary-division."
    "example-co.org";
inline constexpr char kEmail254[] =
    "the.quarterly.reporting.mailbox.of.the.regional.sales.office.64x@"
    "customer-relations-and-after-sales-support-for-northern-europe."
    "subsidiary-division-of-the-international-holding-company-group."
    "mail-gateway-cluster-number-seven-in-frankfurt-main.example.org";

// 128 characters as a password manager makes them, with two lone conversions.
inline constexpr char kPassword128[] =
    "5-75&;YX&8[>XM5mSL*]%xF<y5_>_U@B)IHEYe<D7p4;Z(d]l#A{K6_j0,Kgod&kDI.NzNlxIC~AbaG8wy1J.[Z}"
    "irLn%dqB0PRfMBH7!W~-Y5&YQ1^xOy1bAi;mCaXy";

// A DIGEST-MD5 challenge (RFC 2831 section 2.1.1) with a realm of that length.
inline std::string DigestMd5Challenge(size_t realm_length) {
  return "realm=\"" + Repeat("A", realm_length) +
         "\",nonce=\"9a1fe6b2c1d04e3f7b6a\",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
}

inline constexpr char kDigestMd5Response[] =
    "username=\"alice\",nonce=\"9a1fe6b2c1d04e3f7b6a\",cnonce=\"5c2e8f0a7b3d\",nc=00000001,"
    "qop=auth,digest-uri=\"pop/mail.example.org\",response=0d4bbd760a152321f2143af7d388dad9";

// The first bytes of a TLS ClientHello and ServerHello record ("..."s keeps
// their NUL bytes).
inline std::string ClientHello() {
  using namespace std::string_literals;
  return "\026\003\001\002\000\001\000\001\374\003\003"s;
}
inline std::string ServerHello() {
  using namespace std::string_literals;
  return "\026\003\003\000\132\002\000\000\126\003\003"s;
}

}  // namespace rule_cases_internal

inline const std::vector<RuleCase>& RuleCases() {
  using namespace std::string_literals;
  using namespace rule_cases_internal;
  static const std::vector<RuleCase>* const cases = new std::vector<RuleCase>{
      // ------------------------------------------------------------ 9100001 UIDL
      {9100001, "uidl_negative_argument",
       LoggedIn().C("UIDL -1\r\n"s).S("-ERR no such message\r\n"s).Quit().Done(),
       LoggedIn()
           .C("UIDL\r\n"s)
           .S("+OK\r\n1 b7e2c41f09a3\r\n2 5d80aa6e13c4\r\n.\r\n"s)
           .C("uidl 2\r\n"s)
           .S("+OK 2 5d80aa6e13c4\r\n"s)
           .Quit()
           .Done()},
      {9100001, "uidl_two_arguments",
       LoggedIn().C("UIDL 1 2\r\n"s).S("-ERR syntax error\r\n"s).Quit().Done(),
       LoggedIn().C("UIDL 1\r\n"s).S("+OK 1 b7e2c41f09a3\r\n"s).Quit().Done()},
      // 11 digits; the near miss has the largest 10-digit number and a trailing blank.
      {9100001, "uidl_eleven_digits",
       LoggedIn().C("UIDL 42949672950\r\n"s).S("-ERR no such message\r\n"s).Quit().Done(),
       LoggedIn().C("UIDL 4294967295 \r\n"s).S("-ERR no such message\r\n"s).Quit().Done()},

      // ------------------------------------------------------------ 9100002 USER
      {9100002, "user_overflow",
       Greeted().C("USER "s + Repeat("A", 600) + "\r\n"s).S("-ERR\r\n"s).Done(),
       Greeted()
           .C("USER "s + kEmail100 + "\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("-ERR [AUTH] Authentication failed.\r\n"s)
           .C("USER "s + kEmail254 + "\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},
      // user%domain logins hold one conversion-looking %: %s, a plain %n.
      {9100002, "user_format_string",
       Greeted().C("USER AAAA%08x.%08x.%08x.%08x.%n\r\n"s).S("-ERR\r\n"s).Done(),
       Greeted()
           .C("USER alice%sales.example.com\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("-ERR [AUTH] Authentication failed.\r\n"s)
           .C("USER bob%news.example.org\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},
      {9100002, "user_control_bytes", Greeted().C("USER root\0admin\r\n"s).S("-ERR\r\n"s).Done(),
       Greeted()
           .C("user\tJ\303\274rgen.M\303\274ller@example.de\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100003 PASS
      // SLMail 5.5 overflows at 2606 bytes.
      {9100003, "pass_overflow",
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS "s + Repeat("A", 2700) + "\r\n"s)
           .S("-ERR\r\n"s)
           .Done(),
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS "s + kPassword128 + "\r\n"s)
           .S("-ERR [AUTH] Authentication failed.\r\n"s)
           .C("USER alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS correct horse battery staple 42\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},
      // The near miss holds three conversions, never three in a row.
      {9100003, "pass_format_string",
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS %s%s%s%s%s%s%s%s%s%s\r\n"s)
           .S("-ERR\r\n"s)
           .Done(),
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS 100%sure%dog%xyz\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},
      // Terminal escapes aimed at whoever reads the server's log.
      {9100003, "pass_control_bytes",
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS \033[2J\033[Hpwned\r\n"s)
           .S("-ERR\r\n"s)
           .Done(),
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS tab\tinside\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100004 status token
      // The near miss: "+ " inside SASL, and status tokens in lower case.
      {9100004, "bad_status_token",
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OKAY alice\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done(),
       Greeted()
           .C("AUTH PLAIN\r\n"s)
           .S("+ \r\n"s)
           .C(Base64("\0alice\0s3cret"s) + "\r\n"s)
           .S("+ok Logged in.\r\n"s)
           .C("STAT\r\n"s)
           .S("+OK 2 320\r\n"s)
           .C("QUIT\r\n"s)
           .S("+ok Logging out.\r\n"s)
           .Done()},
      {9100004, "plus_outside_sasl",
       Greeted()
           .C("USER alice\r\n"s)
           .S("+ go ahead\r\n"s)
           .S("+OK\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done(),
       LoggedIn().C("NOOP\r\n"s).S("+OK\r\n"s).Quit().Done()},

      // ------------------------------------------------------------ 9100005 RETR format string
      // The near miss pipelines RETR and DELE; the body's % is never inspected.
      {9100005, "retr_format_string",
       LoggedIn().C("RETR %s%s%s%s%s%s%s%s\r\n"s).S("-ERR no such message\r\n"s).Quit().Done(),
       LoggedIn()
           .C("LIST\r\n"s)
           .S("+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"s)
           .C("RETR 1\r\nDELE 1\r\n"s)
           .S("+OK 120 octets\r\nSubject: 50% off %s\r\n\r\nHello\r\n.\r\n"s +
              "+OK message 1 deleted\r\n"s)
           .C("top 2 0\r\n"s)
           .S("+OK\r\nSubject: hi\r\n.\r\n"s)
           .C("LIST 2\r\n"s)
           .S("+OK 2 200\r\n"s)
           .Quit()
           .Done()},
      {9100005, "dele_format_string",
       LoggedIn().C("DELE %x%x%x%n\r\n"s).S("-ERR no such message\r\n"s).Quit().Done(),
       LoggedIn().C("DELE 1\r\n"s).S("+OK message 1 deleted\r\n"s).Quit().Done()},

      // ------------------------------------------------------------ 9100006 cURL DIGEST-MD5
      {9100006, "digest_md5_realm_124",
       Greeted()
           .C("AUTH DIGEST-MD5\r\n"s)
           .S("+ "s + Base64(DigestMd5Challenge(124)) + "\r\n"s)
           .C(Base64(kDigestMd5Response) + "\r\n"s)
           .S("-ERR [AUTH] Authentication failed.\r\n"s)
           .Quit()
           .Done(),
       Greeted()
           .C("AUTH DIGEST-MD5\r\n"s)
           .S("+ "s + Base64(DigestMd5Challenge(123)) + "\r\n"s)
           .C(Base64(kDigestMd5Response) + "\r\n"s)
           .S("-ERR [AUTH] Authentication failed.\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100007 first line > 512
      // The near miss's first line is 512 bytes, CRLF included.
      {9100007, "response_first_line_600",
       Greeted().C("USER alice\r\n"s).S("-ERR "s + Repeat("x", 600) + "\r\n"s).Done(),
       Greeted()
           .C("USER alice\r\n"s)
           .S("+OK "s + Repeat("x", 506) + "\r\n"s)
           .C("PASS s3cret\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100008 unterminated line
      // A SASL challenge, exempt from the 512-byte limit: a first line this long
      // would raise 9100007 too, and message bodies stay in the kernel. The
      // near miss's challenge line is 3996 bytes.
      {9100008, "sasl_challenge_of_4996",
       Greeted()
           .C("AUTH GSSAPI\r\n"s)
           .S("+ "s + Base64(Repeat("0123456789abcdef", 234)) + "\r\n"s)
           .C("*\r\n"s)
           .S("-ERR Authentication aborted\r\n"s)
           .Quit()
           .Done(),
       Greeted()
           .C("AUTH GSSAPI\r\n"s)
           .S("+ "s + Base64(Repeat("0123456789abcdef", 187)) + "\r\n"s)
           .C("*\r\n"s)
           .S("-ERR Authentication aborted\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100009 absurd counts
      // The near miss: a 5 GiB mailbox has a 10-digit size, which is fine.
      {9100009, "stat_count_2_to_the_32",
       LoggedIn().C("STAT\r\n"s).S("+OK 4294967296 1024\r\n"s).Quit().Done(),
       LoggedIn()
           .C("STAT\r\n"s)
           .S("+OK 2 5368709120\r\n"s)
           .C("LIST 2\r\n"s)
           .S("+OK 2 5368709000\r\n"s)
           .Quit()
           .Done()},
      {9100009, "list_negative_size", LoggedIn().C("LIST 1\r\n"s).S("+OK 1 -1\r\n"s).Quit().Done(),
       LoggedIn().C("LIST 1\r\n"s).S("+OK 1 120\r\n"s).Quit().Done()},

      // ------------------------------------------------------------ 9100010 APOP
      // The near misses log in with a 254-byte name, the longest valid address.
      {9100010, "apop_long_name",
       Greeted()
           .C("APOP "s + Repeat("A", 300) + " "s + kApopDigest + "\r\n"s)
           .S("-ERR\r\n"s)
           .Done(),
       Greeted()
           .C("APOP "s + kEmail254 + " "s + kApopDigest + "\r\n"s)
           .S("+OK maildrop has 2 messages\r\n"s)
           .Quit()
           .Done()},
      {9100010, "apop_long_digest",
       Greeted().C("APOP alice "s + Repeat("f", 200) + "\r\n"s).S("-ERR\r\n"s).Done(),
       Greeted()
           .C("apop alice "s + kApopDigest + "\r\n"s)
           .S("+OK maildrop has 2 messages\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100011 AUTH mechanism
      // The near miss: long initial responses after short mechanism names.
      {9100011, "auth_long_mechanism",
       Greeted()
           .C("AUTH "s + Repeat("A", 200) + "\r\n"s)
           .S("-ERR Unsupported mechanism\r\n"s)
           .Done(),
       Greeted()
           .C("AUTH PLAIN "s + Base64("\0alice\0"s + kPassword128) + "\r\n"s)
           .S("-ERR [AUTH] Authentication failed.\r\n"s)
           .C("AUTH XOAUTH2 "s +
              Base64("user=alice@example.com\001auth=Bearer ya29."s + Repeat("a0Kx7", 160) +
                     "\001\001"s) +
              "\r\n"s)
           .S("+OK Logged in.\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100012 XTND
      {9100012, "xtnd_overflow",
       LoggedIn()
           .C("XTND "s + Repeat("A", 400) + "\r\n"s)
           .S("-ERR Unknown command\r\n"s)
           .Quit()
           .Done(),
       LoggedIn()
           .C("XTND XLST X-Microsoft-Antispam-Mailbox-Delivery 1\r\n"s)
           .S("-ERR Unknown command\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100013 message commands
      {9100013, "list_overlong_argument",
       LoggedIn()
           .C("LIST "s + Repeat("9", 64) + "\r\n"s)
           .S("-ERR no such message\r\n"s)
           .Quit()
           .Done(),
       LoggedIn()
           .C("TOP 4294967295 4294967295\r\n"s)
           .S("-ERR no such message\r\n"s)
           .C("list 4294967295\r\n"s)
           .S("-ERR no such message\r\n"s)
           .C("STAT\r\n"s)
           .S("+OK 0 0\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100014 negative numbers
      {9100014, "dele_negative",
       LoggedIn().C("DELE -1\r\n"s).S("-ERR no such message\r\n"s).Quit().Done(),
       LoggedIn().C("DELE 1\r\n"s).S("+OK message 1 deleted\r\n"s).Quit().Done()},
      {9100014, "top_negative_lines",
       LoggedIn().C("TOP 1 -1\r\n"s).S("-ERR invalid line count\r\n"s).Quit().Done(),
       LoggedIn().C("TOP 1 0\r\n"s).S("+OK\r\nSubject: hi\r\n.\r\n"s).Quit().Done()},

      // ------------------------------------------------------------ 9100015 format strings
      {9100015, "format_string_in_stat",
       LoggedIn().C("STAT %x.%x.%x.%n\r\n"s).S("-ERR syntax error\r\n"s).Quit().Done(),
       LoggedIn()
           .C("XTND XLST X-Discount-50% 1\r\n"s)
           .S("-ERR Unknown command\r\n"s)
           .C("STAT\r\n"s)
           .S("+OK 2 320\r\n"s)
           .Quit()
           .Done()},
      {9100015, "format_string_as_verb",
       LoggedIn().C("%s%s%s%s%s%s%s%s\r\n"s).S("-ERR Unknown command\r\n"s).Quit().Done(),
       Greeted()
           .C("APOP alice%sales "s + kApopDigest + "\r\n"s)
           .S("+OK maildrop has 2 messages\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100016 Dovecot
      // The near miss aborts GSSAPI (not marked, see the rule) and aborts LOGIN
      // after the username.
      {9100016, "auth_plain_aborted_before_username",
       Greeted()
           .C("AUTH PLAIN\r\n"s)
           .S("+ \r\n"s)
           .C("*\r\n"s)
           .S("-ERR Authentication aborted\r\n"s)
           .Quit()
           .Done(),
       Greeted()
           .C("AUTH GSSAPI\r\n"s)
           .S("+ \r\n"s)
           .C("*\r\n"s)
           .S("-ERR Authentication aborted\r\n"s)
           .C("AUTH LOGIN\r\n"s)
           .S("+ "s + Base64("Username:") + "\r\n"s)
           .C(Base64("alice") + "\r\n"s)
           .S("+ "s + Base64("Password:") + "\r\n"s)
           .C("*\r\n"s)
           .S("-ERR Authentication aborted\r\n"s)
           .Quit()
           .Done()},

      // ------------------------------------------------------------ 9100017 STLS commands
      {9100017, "stls_command_injection",
       Greeted()
           .C("STLS\r\nUSER alice\r\n"s)
           .S("+OK Begin TLS negotiation\r\n"s)
           .C(ClientHello())
           .S(ServerHello())
           .Done(),
       Greeted()
           .C("CAPA\r\n"s)
           .S("+OK\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n"s)
           .C("STLS\r\n"s)
           .S("+OK Begin TLS negotiation\r\n"s)
           .C(ClientHello())
           .S(ServerHello())
           .Done()},

      // ------------------------------------------------------------ 9100018 STLS responses
      {9100018, "stls_response_injection",
       Greeted()
           .C("STLS\r\n"s)
           .S("+OK Begin TLS negotiation\r\n+OK 2 320\r\n"s)
           .C(ClientHello())
           .S(ServerHello())
           .Done(),
       Greeted()
           .C("STLS\r\n"s)
           .S("+OK Begin TLS negotiation\r\n"s)
           .C(ClientHello())
           .S(ServerHello())
           .Done()},

      // ------------------------------------------------------------ 9100019 brute force
      // Alerts on every attempt after the 10th: 11 fire it, 10 do not.
      {9100019, "eleven_failed_logins",
       Greeted()
           .Times(11, Dialogue()
                          .C("USER alice\r\n"s)
                          .S("+OK\r\n"s)
                          .C("PASS 123456\r\n"s)
                          .S("-ERR [AUTH] Authentication failed.\r\n"s))
           .Done(),
       Greeted()
           .Times(10, Dialogue()
                          .C("USER alice\r\n"s)
                          .S("+OK\r\n"s)
                          .C("PASS 123456\r\n"s)
                          .S("-ERR [AUTH] Authentication failed.\r\n"s))
           .Done()},
  };
  return *cases;
}

}  // namespace popguard::test

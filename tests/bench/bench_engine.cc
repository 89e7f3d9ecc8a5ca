// The detection engine on a mailbox-download workload: its cost per
// inspected unit against one bare hs_scan per buffer (the floor), replay
// throughput without the prefilter, and the share of POP3 payload the kernel
// sends up. How to read the results: docs/PERFORMANCE.md, "Detection engine".
#include <benchmark/benchmark.h>
#include <hs/hs.h>
#include <linux/bpf.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "agent/detect/engine.h"
#include "agent/detect/kernel_plan.h"
#include "agent/detect/load.h"
#include "agent/detect/matcher.h"
#include "agent/detect/unit.h"
#include "agent/pop3/session.h"
#include "agent/replay/replay.h"
#include "bench_util.h"
#include "packet_builder.h"
#include "pcap_writer.h"
#include "replay_util.h"
#include "rule_cases.h"

namespace popguard::bench {
namespace {

using test::AlertKey;
using test::Exchange;
using test::Flow;
using test::KeyOf;

// ---------------------------------------------------------------- parameters

constexpr uint64_t kSeed = 0x706f7033'62656e63;  // "pop3benc"
constexpr int kMailboxSessions = 400;
constexpr int kConcurrentSessions = 16;
constexpr size_t kSegment = 1460;  // MSS at MTU 1500, no TCP options
constexpr int64_t kFrameGapNs = 20'000;
constexpr size_t kMinMessage = 2 * 1024;
constexpr size_t kMaxMessage = 120 * 1024;

// engine_per_unit: each round is kPasses passes of the floor over every
// unit, then kPasses passes of the engine; the median round is reported.
constexpr int kRounds = 15;
constexpr int kPasses = 5;
static_assert(kRounds % 2 == 1, "the median must be one round, not a mean of two");
// replay_no_prefilter_bytes_per_second: whole replays, median reported.
constexpr int kReplayRounds = 9;
static_assert(kReplayRounds % 2 == 1, "the median must be one round, not a mean of two");
// engine_kind/*: the same rounds over the units of one kind (a verb, a
// response status) each; kinds with fewer units per pass are pooled.
constexpr size_t kMinKindUnits = 50;

// Each engine pass sees the units an hour later than the one before, so
// that detection_filter and threshold windows (60 s in the shipped rules)
// start afresh and every pass does exactly the work of the first.
constexpr int64_t kPassShiftNs = int64_t{3600} * 1'000'000'000;

constexpr char kServerIp[] = "198.51.100.1";
constexpr uint16_t kPop3Port = 110;

// A case that did not take the path its name claims: timing it would
// report the cost of something else.
class PathError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

double ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double NowNs() {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count());
}

// splitmix64, with its own helpers: <random>'s distributions differ between
// standard libraries, and the workload must be the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Uniform() < p; }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(N)];
  }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------- messages

constexpr const char* kWords[] = {
    "the",      "quarterly", "report",    "numbers",   "region",   "forecast", "contract",
    "partners", "meeting",   "Thursday",  "budget",    "travel",   "estimate", "please",
    "attached", "updated",   "review",    "following", "schedule", "invoice",  "customer",
    "delivery", "project",   "timeline",  "before",    "after",    "team",     "we",
    "should",   "could",     "would",     "discuss",   "details",  "agenda",   "minutes",
    "shipment", "warehouse", "order",     "confirm",   "thanks",   "regards",  "office",
    "next",     "week",      "month",     "planning",  "draft",    "version",  "final",
    "approval", "signed",    "pending",   "question",  "answer",   "support",  "ticket",
    "server",   "backup",    "migration", "weekend",   "holiday",  "on",       "in",
    "for",      "with",      "and",       "or",        "to",       "of",       "a",
    "is",       "are",       "was",       "be",        "this",     "that",     "it",
    "our",      "your",      "their",     "results",   "analysis", "summary",  "notes",
};

constexpr const char* kNames[] = {"Anna Berg",    "Jonas Keller", "Maria Rossi", "Tom Hughes",
                                  "Lena Fischer", "Paul Martin",  "Sara Lind",   "Omar Haddad",
                                  "Chen Wei",     "Eva Novak",    "Nils Olsen",  "Rita Gomes"};
constexpr const char* kDomains[] = {"example.com", "example.net", "partner.example",
                                    "lists.example.org", "billing.example.com"};
constexpr const char* kGreetings[] = {
    "+OK Dovecot (Debian) ready.\r\n",
    "+OK POP3 server ready <1896.697170952@mail.example.org>\r\n",
    "+OK mail.example.org Cyrus POP3 v3.6.1 server ready\r\n",
    "+OK Hello there.\r\n",
};
// Lines a body may start with a dot: the sender's, before stuffing.
constexpr const char* kDotLines[] = {".",
                                     "...",
                                     ". . .",
                                     ".NET 8 migration notes follow",
                                     ".signature attached below",
                                     "..and the rest of it"};

struct WorkloadStats {
  int mailbox_sessions = 0;
  int attack_sessions = 0;
  int empty_polls = 0;  // mailbox sessions that retrieved nothing
  int messages = 0;     // RETR'd
  int multipart = 0;
  uint64_t message_bytes = 0;  // as stored, before dot-stuffing
  uint64_t dot_stuffed_lines = 0;
  uint64_t frames = 0;
  uint64_t capture_bytes = 0;
  uint64_t payload_to_server = 0;
  uint64_t payload_to_client = 0;
};

std::string Sentence(Rng& rng) {
  std::string s;
  const int words = 6 + static_cast<int>(rng.Below(12));
  for (int i = 0; i < words; ++i) {
    std::string w = rng.Pick(kWords);
    if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    if (!s.empty()) s += ' ';
    s += w;
  }
  return s + (rng.Chance(0.1) ? "?" : ".");
}

// Text wrapped at 72 columns, CRLF line ends, about `size` bytes; a few
// paragraphs quote, and a few lines start with a dot.
std::string BodyText(Rng& rng, size_t size) {
  std::string out;
  while (out.size() < size) {
    if (rng.Chance(0.08)) {
      out += std::string(rng.Pick(kDotLines)) + "\r\n";
      continue;
    }
    const bool quoted = rng.Chance(0.15);
    std::string line = quoted ? "> " : "";
    const int sentences = 2 + static_cast<int>(rng.Below(5));
    for (int i = 0; i < sentences; ++i) {
      std::string s = Sentence(rng);
      size_t at = 0;
      while (at < s.size()) {
        size_t end = s.find(' ', at);
        if (end == std::string::npos) end = s.size();
        std::string_view word(s.data() + at, end - at);
        if (line.size() + 1 + word.size() > 72 && line.size() > (quoted ? 2u : 0u)) {
          out += line + "\r\n";
          line = quoted ? "> " : "";
        }
        if (!line.empty() && line != "> ") line += ' ';
        line += word;
        at = end + 1;
      }
    }
    out += line + "\r\n\r\n";
  }
  return out;
}

std::string Headers(Rng& rng, int index, const std::string& user, const std::string& type) {
  const std::string from_name = rng.Pick(kNames);
  const std::string domain = rng.Pick(kDomains);
  std::string from = from_name;
  for (char& c : from) c = c == ' ' ? '.' : static_cast<char>(std::tolower(c));
  from += "@" + domain;
  const int day = 1 + static_cast<int>(rng.Below(28));
  const int hour = static_cast<int>(rng.Below(24));
  const int minute = static_cast<int>(rng.Below(60));
  char date[64];
  std::snprintf(date, sizeof date, "%d Nov 2026 %02d:%02d:%02d +0100", day, hour, minute,
                static_cast<int>(rng.Below(60)));
  char id[32];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(rng.Next()));
  std::string dkim;
  {
    // A 2048-bit RSA signature, as mail from large senders carries.
    std::string sig(256, '\0');
    for (char& c : sig) c = static_cast<char>(rng.Next());
    const std::string b = test::Base64(sig);
    dkim = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=" + domain +
           "; s=mail2026;\r\n\tt=1764201600; bh=" + test::Base64(sig.substr(0, 32)) +
           ";\r\n\th=From:To:Subject:Date:Message-ID:MIME-Version:Content-Type;\r\n\tb=";
    for (size_t at = 0; at < b.size(); at += 70) {
      dkim += b.substr(at, 70);
      dkim += at + 70 < b.size() ? "\r\n\t " : "\r\n";
    }
  }
  std::string h;
  h += "Return-Path: <" + from + ">\r\n";
  h += "Delivered-To: " + user + "\r\n";
  for (int hop = 0; hop < 2; ++hop) {
    h += "Received: from mx" + std::to_string(hop + 1) + "." + domain + " (mx" +
         std::to_string(hop + 1) + "." + domain + " [203.0.113." +
         std::to_string(1 + rng.Below(250)) +
         "])\r\n\tby mail.example.org (Postfix) with ESMTPS id " + std::string(id, 10) +
         "\r\n\tfor <" + user + ">; " + date + "\r\n";
  }
  h += dkim;
  h += "From: " + from_name + " <" + from + ">\r\n";
  h += "To: " + user + "\r\n";
  h += "Subject: " + Sentence(rng) + "\r\n";
  h += "Date: Thu, " + std::string(date) + "\r\n";
  h += "Message-ID: <" + std::string(id) + "." + std::to_string(index) + "@" + domain + ">\r\n";
  h += "MIME-Version: 1.0\r\n";
  h += "Content-Type: " + type + "\r\n";
  return h;
}

// One message as stored (RFC 5322, CRLF), about `size` bytes.
std::string Message(Rng& rng, int index, const std::string& user, size_t size, bool multipart) {
  if (!multipart) {
    std::string m = Headers(rng, index, user, "text/plain; charset=utf-8") +
                    "Content-Transfer-Encoding: 8bit\r\n\r\n";
    m += BodyText(rng, size > m.size() + 200 ? size - m.size() : 200);
    return m;
  }
  char boundary[40];
  std::snprintf(boundary, sizeof boundary, "=_Part_%012llx",
                static_cast<unsigned long long>(rng.Next() & 0xffffffffffffull));
  std::string m =
      Headers(rng, index, user, std::string("multipart/mixed;\r\n\tboundary=\"") + boundary + "\"");
  m += "\r\nThis is a multi-part message in MIME format.\r\n\r\n";
  m += std::string("--") + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n" +
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
  m += BodyText(rng, 800 + rng.Below(2500));
  static constexpr const char* kFiles[] = {"report.pdf", "scan_0042.jpg", "budget.xlsx",
                                           "minutes.docx", "photos.zip"};
  m += std::string("\r\n--") + boundary + "\r\nContent-Type: application/octet-stream; name=\"" +
       rng.Pick(kFiles) + "\"\r\nContent-Disposition: attachment\r\n" +
       "Content-Transfer-Encoding: base64\r\n\r\n";
  const std::string closing = std::string("\r\n--") + boundary + "--\r\n";
  const size_t room = size > m.size() + closing.size() + 80 ? size - m.size() - closing.size() : 80;
  std::string raw(room / 78 * 57 + 57, '\0');
  for (char& c : raw) c = static_cast<char>(rng.Next() >> 56);
  const std::string b64 = test::Base64(raw);
  for (size_t at = 0; at < b64.size(); at += 76) m += b64.substr(at, 76) + "\r\n";
  m += closing.substr(2);
  return m;
}

// RFC 1939 section 3: a line starting with '.' gets one more.
std::string DotStuff(const std::string& message, uint64_t* stuffed) {
  std::string out;
  out.reserve(message.size() + message.size() / 64);
  size_t at = 0;
  while (at < message.size()) {
    size_t end = message.find("\r\n", at);
    end = end == std::string::npos ? message.size() : end + 2;
    if (message[at] == '.') {
      out += '.';
      ++*stuffed;
    }
    out.append(message, at, end - at);
    at = end;
  }
  return out;
}

size_t MessageSize(Rng& rng) {
  // Log-uniform: as many 2-4 KB notes as 60-120 KB messages.
  const double ratio = static_cast<double>(kMaxMessage) / kMinMessage;
  return static_cast<size_t>(kMinMessage * std::exp(rng.Uniform() * std::log(ratio)));
}

// A mail client fetching the new messages of one mailbox, leaving them on
// the server (UIDL tells it which are new).
std::vector<Exchange> MailboxSession(Rng& rng, int session, WorkloadStats* stats) {
  char user[48];
  std::snprintf(user, sizeof user, "user%04d@example.org", session);
  static constexpr char kPasswordChars[] =
      "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#$&*+-_.";
  std::string password;
  for (size_t i = 0, n = 10 + rng.Below(11); i < n; ++i) {
    password += kPasswordChars[rng.Below(sizeof kPasswordChars - 1)];
  }
  const int count = static_cast<int>(rng.Below(31));
  const int fresh = count == 0 ? 0 : static_cast<int>(rng.Below(std::min(count, 8) + 1));
  std::vector<size_t> sizes(count);
  std::vector<std::string> bodies(count);
  uint64_t total = 0;
  for (int i = 0; i < count; ++i) {
    const size_t target = MessageSize(rng);
    if (i >= count - fresh) {
      const bool multipart = target >= 12 * 1024 && rng.Chance(0.4);
      bodies[i] = Message(rng, i + 1, user, target, multipart);
      sizes[i] = bodies[i].size();
      stats->multipart += multipart;
    } else {
      sizes[i] = target;  // never retrieved: only its size is listed
    }
    total += sizes[i];
  }
  std::vector<Exchange> x;
  auto c = [&](std::string s) { x.push_back({true, std::move(s)}); };
  auto s = [&](std::string s) { x.push_back({false, std::move(s)}); };
  s(rng.Pick(kGreetings));
  c(std::string("USER ") + user + "\r\n");
  s("+OK\r\n");
  c("PASS " + password + "\r\n");
  s("+OK Logged in.\r\n");
  c("STAT\r\n");
  s("+OK " + std::to_string(count) + " " + std::to_string(total) + "\r\n");
  c("LIST\r\n");
  std::string list =
      "+OK " + std::to_string(count) + " messages (" + std::to_string(total) + " octets)\r\n";
  for (int i = 0; i < count; ++i) {
    list += std::to_string(i + 1) + " " + std::to_string(sizes[i]) + "\r\n";
  }
  s(list + ".\r\n");
  c("UIDL\r\n");
  std::string uidl = "+OK\r\n";
  for (int i = 0; i < count; ++i) {
    char uid[40];
    std::snprintf(uid, sizeof uid, "%d %08x%08x", i + 1,
                  0x5f3a0000u + static_cast<unsigned>(session),
                  static_cast<unsigned>(i) * 2654435761u);
    uidl += std::string(uid) + "\r\n";
  }
  s(uidl + ".\r\n");
  for (int i = count - fresh; i < count; ++i) {
    c("RETR " + std::to_string(i + 1) + "\r\n");
    s("+OK " + std::to_string(sizes[i]) + " octets\r\n" +
      DotStuff(bodies[i], &stats->dot_stuffed_lines) + ".\r\n");
    stats->messages++;
    stats->message_bytes += sizes[i];
  }
  c("QUIT\r\n");
  s("+OK Logging out.\r\n");
  stats->empty_polls += fresh == 0;
  return x;
}

// ---------------------------------------------------------------- workload

struct FrameInfo {
  int64_t timestamp_ns;
  uint32_t session;
  bool to_server;
  uint32_t payload_offset;  // where the TCP payload starts in the frame
};

// One unit as the Inspector hands it to the engine, with storage for its
// buffers; `unit`'s views are set once the vector stops growing.
struct StoredUnit {
  detect::Unit unit;
  uint32_t session = 0;
  std::string kind;  // command, response, sasl or anomaly
  // By unit slot.
  std::array<std::optional<std::string>, detect::kUnitBuffers.size()> buffers;
};

// The unit the Inspector makes of `event` (inspect::UnitOf), with its
// buffers copied so it outlives the event.
std::optional<StoredUnit> UnitOf(const pop3::Event& event, int64_t now_ns) {
  std::string payload;
  std::optional<detect::Unit> unit = inspect::UnitOf(event, now_ns, &payload);
  if (!unit) return std::nullopt;
  StoredUnit u;
  u.unit = *unit;
  for (rules::Buffer b : detect::kUnitBuffers) {
    if (std::optional<std::string_view> view = unit->Get(b)) {
      u.buffers[detect::UnitSlot(b)] = std::string(*view);
    }
  }
  u.kind = unit->anomaly                            ? "anomaly"
           : unit->Get(rules::Buffer::kPop3Command) ? "command"
           : unit->Get(rules::Buffer::kPop3Sasl)    ? "sasl"
                                                    : "response";
  return u;
}

std::unique_ptr<detect::RuleEngine> LoadEngine() {
  detect::LoadedRules loaded = detect::LoadRules({test::ShippedRules()});
  if (!loaded.engine || !loaded.errors.empty()) {
    throw PathError("the shipped rules did not all load" +
                    (loaded.errors.empty() ? std::string() : ": " + loaded.errors.front().message));
  }
  return std::move(loaded.engine);
}

// The engine counters that say what work a pass did.
struct Work {
  uint64_t units, scans, candidates, matches, alerts, suppressed;
  bool operator==(const Work&) const = default;
  static Work Of(const detect::EngineCounters& c) {
    return {c.units, c.scans, c.candidates, c.matches, c.alerts, c.suppressed};
  }
  Work operator-(const Work& o) const {
    return {units - o.units,     scans - o.scans,   candidates - o.candidates,
            matches - o.matches, alerts - o.alerts, suppressed - o.suppressed};
  }
  std::string ToString() const {
    return "units " + std::to_string(units) + ", scans " + std::to_string(scans) + ", candidates " +
           std::to_string(candidates) + ", matches " + std::to_string(matches) + ", alerts " +
           std::to_string(alerts) + ", suppressed " + std::to_string(suppressed);
  }
};

void CheckNoLoss(const detect::EngineCounters& c) {
  if (c.scan_errors || c.match.step_limit_hits || c.match.pcre_errors || c.threshold_evictions) {
    throw PathError("engine losses: scan_errors " + std::to_string(c.scan_errors) +
                    ", step_limit_hits " + std::to_string(c.match.step_limit_hits) +
                    ", pcre_errors " + std::to_string(c.match.pcre_errors) +
                    ", threshold_evictions " + std::to_string(c.threshold_evictions));
  }
}

class Workload {
 public:
  static Workload& Get() {
    static Workload workload;
    return workload;
  }

  const std::string& capture() const { return capture_; }
  const std::vector<StoredUnit>& units() const { return units_; }
  const std::vector<detect::FlowTuple>& tuples() const { return tuples_; }
  size_t sessions() const { return tuples_.size(); }
  const WorkloadStats& stats() const { return stats_; }
  // What a fresh engine does over the units, checked against a replay.
  const Work& reference() const { return reference_; }
  const std::vector<AlertKey>& alerts() const { return alerts_; }
  uint64_t buffers_present() const { return buffers_present_; }

 private:
  Workload() {
    Generate();
    BuildUnits();
    Check();
    Print();
  }

  struct Conversation {
    Flow flow;
    std::vector<Exchange> exchanges;
    size_t next = 0;
    bool attack = false;
  };

  void Emit(std::vector<uint8_t> frame, uint32_t session, bool to_server, size_t payload_offset) {
    stats_.frames++;
    stats_.capture_bytes += frame.size();
    const size_t payload = frame.size() - payload_offset;
    (to_server ? stats_.payload_to_server : stats_.payload_to_client) += payload;
    writer_->Write(now_ns_, frame);
    info_.push_back({now_ns_, session, to_server, static_cast<uint32_t>(payload_offset)});
    frames_.push_back(std::move(frame));
    now_ns_ += kFrameGapNs;
  }

  // One step of a conversation: the handshake, one write (cut into
  // segments, the client acknowledging every second one of the server's),
  // or the FINs. Returns false once it is over.
  bool Step(Conversation& c, uint32_t session) {
    Flow& f = c.flow;
    auto empty = [&](std::vector<uint8_t> frame, bool to_server) {
      Emit(std::move(frame), session, to_server, f.PayloadOffset());
    };
    if (c.next == 0) {
      empty(f.Syn(), true);
      empty(f.SynAck(), false);
      empty(f.Ack(), true);
    } else if (c.next <= c.exchanges.size()) {
      const Exchange& e = c.exchanges[c.next - 1];
      int segments = 0;
      for (size_t at = 0; at < e.bytes.size(); at += kSegment) {
        std::string_view piece = std::string_view(e.bytes).substr(at, kSegment);
        std::vector<uint8_t> frame = e.to_server ? f.ToServer(piece) : f.ToClient(piece);
        Emit(std::move(frame), session, e.to_server, f.PayloadOffset());
        if (!e.to_server && ++segments % 2 == 0) empty(f.Ack(), true);
      }
      if (!e.to_server && segments % 2 == 1) empty(f.Ack(), true);
    } else {
      empty(f.FinToServer(), true);
      empty(f.FinToClient(), false);
      empty(f.Ack(), true);
      return false;
    }
    ++c.next;
    return true;
  }

  void Generate() {
    Rng rng(kSeed);
    std::vector<Conversation> conversations;
    auto add = [&](std::vector<Exchange> exchanges, bool attack) {
      const uint32_t k = static_cast<uint32_t>(conversations.size());
      const std::string client =
          "10.20." + std::to_string(k / 250) + "." + std::to_string(k % 250 + 1);
      Conversation c{Flow(client, static_cast<uint16_t>(40000 + k), kServerIp, kPop3Port),
                     std::move(exchanges), 0, attack};
      c.flow.client_isn = static_cast<uint32_t>(rng.Next());
      c.flow.server_isn = static_cast<uint32_t>(rng.Next());
      conversations.push_back(std::move(c));
    };
    for (int i = 0; i < kMailboxSessions; ++i) add(MailboxSession(rng, i, &stats_), false);
    // One attack dialogue per sid, each from its own address: 9100019
    // counts logins per source.
    std::set<uint32_t> sids;
    for (const test::RuleCase& rc : test::RuleCases()) {
      if (sids.insert(rc.sid).second) add(rc.fire, true);
    }
    stats_.mailbox_sessions = kMailboxSessions;
    stats_.attack_sessions = static_cast<int>(sids.size());
    attack_sids_ = sids;

    // Sessions start in a shuffled order and run kConcurrentSessions at a
    // time, interleaved write by write.
    std::vector<uint32_t> order(conversations.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
    dir_ = std::make_unique<test::TempDir>();  // removed with the workload, at exit
    capture_ = dir_->File("mailbox.pcap");
    writer_ = std::make_unique<test::PcapWriter>(capture_);
    now_ns_ = test::kPcapEpochNs;
    std::vector<uint32_t> active;
    size_t started = 0;
    while (started < order.size() || !active.empty()) {
      while (active.size() < kConcurrentSessions && started < order.size()) {
        active.push_back(order[started++]);
      }
      const size_t pick = rng.Below(active.size());
      if (!Step(conversations[active[pick]], active[pick])) {
        active.erase(active.begin() + static_cast<std::ptrdiff_t>(pick));
      }
    }
    writer_->Close();
    writer_.reset();
    for (const Conversation& c : conversations) attack_.push_back(c.attack);
  }

  void BuildUnits() {
    const size_t n = attack_.size();
    tuples_.resize(n);
    for (size_t k = 0; k < n; ++k) {
      detect::FlowTuple& t = tuples_[k];
      t.client.bytes = {10, 20, static_cast<uint8_t>(k / 250), static_cast<uint8_t>(k % 250 + 1)};
      t.server.bytes = {198, 51, 100, 1};
      t.client_port = static_cast<uint16_t>(40000 + k);
      t.server_port = kPop3Port;
    }
    int64_t now_ns = 0;
    std::vector<std::unique_ptr<pop3::Session>> sessions(n);
    for (size_t k = 0; k < n; ++k) {
      sessions[k] = std::make_unique<pop3::Session>(
          [this, k, &now_ns](const pop3::Event& event) {
            if (std::optional<StoredUnit> u = UnitOf(event, now_ns)) {
              u->session = static_cast<uint32_t>(k);
              units_.push_back(std::move(*u));
            }
          },
          pop3::SessionOptions{});
    }
    for (size_t i = 0; i < frames_.size(); ++i) {
      const FrameInfo& info = info_[i];
      if (frames_[i].size() == info.payload_offset) continue;
      now_ns = info.timestamp_ns;
      std::string_view payload(
          reinterpret_cast<const char*>(frames_[i].data()) + info.payload_offset,
          frames_[i].size() - info.payload_offset);
      pop3::Session& s = *sessions[info.session];
      if (info.to_server) {
        s.OnClientData(payload);
      } else {
        s.OnServerData(payload);
      }
    }
    frames_.clear();
    frames_.shrink_to_fit();
    info_.clear();
    for (StoredUnit& u : units_) {
      for (rules::Buffer b : detect::kUnitBuffers) {
        if (const std::optional<std::string>& owned = u.buffers[detect::UnitSlot(b)]) {
          u.unit.Set(b, *owned);
          buffers_present_++;
        }
      }
    }
  }

  // The units must be exactly what the Inspector gives the engine: a fresh
  // engine over them must do the same work and raise the same alerts as a
  // replay of the capture without the prefilter.
  void Check() {
    std::unique_ptr<detect::RuleEngine> engine = LoadEngine();
    std::vector<detect::FlowRuleState> flows(sessions());
    std::vector<detect::Alert> alerts;
    for (const StoredUnit& u : units_) {
      alerts.clear();
      engine->Inspect(u.unit, tuples_[u.session], &flows[u.session], &alerts);
      for (const detect::Alert& a : alerts) {
        alerts_.push_back(KeyOf(a));
        if (!attack_[u.session]) mailbox_alerts_++;
      }
    }
    std::sort(alerts_.begin(), alerts_.end());
    CheckNoLoss(engine->counters());
    reference_ = Work::Of(engine->counters());

    std::unique_ptr<detect::RuleEngine> replay_engine = LoadEngine();
    replay::ReplayOptions options;
    options.capture_path = capture_;
    options.prefilter = false;
    std::vector<AlertKey> replayed;
    const replay::ReplayStats stats =
        replay::Replay(options, replay_engine.get(),
                       [&](const detect::Alert& a) { replayed.push_back(KeyOf(a)); });
    std::sort(replayed.begin(), replayed.end());
    const Work work = Work::Of(stats.engine);
    if (!(work == reference_)) {
      throw PathError("the units are not what the Inspector makes: the replay did " +
                      work.ToString() + "; the units " + reference_.ToString());
    }
    if (replayed != alerts_) throw PathError("the units raise other alerts than the replay");
    if (stats.inspector.stream_gaps || stats.inspector.overlap_conflicts || stats.capture_error ||
        stats.frames != stats_.frames) {
      throw PathError("the replay of the workload lost bytes or frames");
    }
    for (const AlertKey& a : alerts_) fired_sids_.insert(std::get<0>(a));
  }

  void Print() const {
    const WorkloadStats& s = stats_;
    std::map<std::string, int> kinds;
    for (const StoredUnit& u : units_) {
      kinds[u.kind]++;
    }
    std::string missing;
    for (uint32_t sid : attack_sids_) {
      if (!fired_sids_.contains(sid)) missing += " " + std::to_string(sid);
    }
    std::fprintf(
        stderr,
        "workload (seed %#llx): %d sessions (%d mailbox downloads, %d of them polls that "
        "retrieved nothing; %d attack dialogues, one per sid)\n"
        "  %d messages retrieved, %d multipart with a base64 attachment, %.1f MB as "
        "stored, %llu dot-stuffed lines\n"
        "  %llu frames, %.1f MB captured, TCP payload %.1f KB to server / %.1f MB to "
        "client\n"
        "  %zu units (%d command, %d response, %d sasl, %d anomaly), %.2f buffers each\n"
        "  %llu alerts (%llu on mailbox sessions), sids fired: %zu of the %zu attacked%s%s\n",
        static_cast<unsigned long long>(kSeed), s.mailbox_sessions + s.attack_sessions,
        s.mailbox_sessions, s.empty_polls, s.attack_sessions, s.messages, s.multipart,
        s.message_bytes / 1e6, static_cast<unsigned long long>(s.dot_stuffed_lines),
        static_cast<unsigned long long>(s.frames), s.capture_bytes / 1e6, s.payload_to_server / 1e3,
        s.payload_to_client / 1e6, units_.size(), kinds["command"], kinds["response"],
        kinds["sasl"], kinds["anomaly"], static_cast<double>(buffers_present_) / units_.size(),
        static_cast<unsigned long long>(alerts_.size()),
        static_cast<unsigned long long>(mailbox_alerts_), fired_sids_.size(), attack_sids_.size(),
        missing.empty() ? "" : "; not fired:", missing.c_str());
  }

  WorkloadStats stats_;
  std::unique_ptr<test::TempDir> dir_;
  std::string capture_;
  std::unique_ptr<test::PcapWriter> writer_;
  int64_t now_ns_ = 0;
  std::vector<std::vector<uint8_t>> frames_;
  std::vector<FrameInfo> info_;
  std::vector<bool> attack_;
  std::set<uint32_t> attack_sids_;
  std::set<uint32_t> fired_sids_;
  std::vector<StoredUnit> units_;
  std::vector<detect::FlowTuple> tuples_;
  Work reference_{};
  std::vector<AlertKey> alerts_;
  uint64_t mailbox_alerts_ = 0;
  uint64_t buffers_present_ = 0;
};

// ---------------------------------------------------------------- engine_per_unit

// The floor: a block-mode database of one literal that never occurs.
class Floor {
 public:
  Floor() {
    hs_compile_error_t* error = nullptr;
    if (hs_compile("\\xff\\xfepopguard-floor\\xfd", HS_FLAG_SINGLEMATCH, HS_MODE_BLOCK, nullptr,
                   &db_, &error) != HS_SUCCESS) {
      std::string message = error ? error->message : "?";
      hs_free_compile_error(error);
      throw PathError("compiling the floor database: " + message);
    }
    if (hs_alloc_scratch(db_, &scratch_) != HS_SUCCESS) throw PathError("floor scratch");
  }
  ~Floor() {
    hs_free_scratch(scratch_);
    hs_free_database(db_);
  }
  Floor(const Floor&) = delete;
  Floor& operator=(const Floor&) = delete;

  void ScanOne(std::string_view b) {
    if (hs_scan(db_, b.data(), static_cast<unsigned>(b.size()), 0, scratch_, nullptr, nullptr) !=
        HS_SUCCESS) {
      throw PathError("hs_scan of the floor failed");
    }
  }

  // One hs_scan per buffer the unit carries; returns the scans made.
  uint64_t Scan(const detect::Unit& unit) {
    uint64_t scans = 0;
    for (rules::Buffer buffer : detect::kUnitBuffers) {
      if (std::optional<std::string_view> b = unit.Get(buffer)) {
        if (hs_scan(db_, b->data(), static_cast<unsigned>(b->size()), 0, scratch_, nullptr,
                    nullptr) != HS_SUCCESS) {
          throw PathError("hs_scan of the floor failed");
        }
        ++scans;
      }
    }
    return scans;
  }

 private:
  hs_database_t* db_ = nullptr;
  hs_scratch_t* scratch_ = nullptr;
};

// The units with their own timestamps and flow state, so each engine pass
// starts where the first did.
class Subject {
 public:
  explicit Subject(const Workload& w) : w_(w), flows_(w.sessions()) {
    units_.reserve(w.units().size());
    for (const StoredUnit& u : w.units()) {
      units_.push_back(u.unit);
      sessions_.push_back(u.session);
    }
  }

  // Off the clock: the next pass's timestamps, flowbits cleared.
  void Prepare(int64_t pass) {
    for (size_t i = 0; i < units_.size(); ++i) Shift(i, pass);
    for (detect::FlowRuleState& f : flows_) f.flowbits.clear();
  }
  // The same for some of the units (engine_kind).
  void Prepare(int64_t pass, const std::vector<size_t>& indices) {
    for (size_t i : indices) Shift(i, pass);
    for (detect::FlowRuleState& f : flows_) f.flowbits.clear();
  }

  // The loop Inspector::Inspect runs per unit.
  void Pass(detect::RuleEngine& engine) {
    for (size_t i = 0; i < units_.size(); ++i) Inspect(engine, i);
  }
  void Pass(detect::RuleEngine& engine, const std::vector<size_t>& indices) {
    for (size_t i : indices) Inspect(engine, i);
  }

  uint64_t FloorPass(Floor& floor) {
    uint64_t scans = 0;
    for (const detect::Unit& u : units_) scans += floor.Scan(u);
    return scans;
  }
  void FloorPass(Floor& floor, const std::vector<size_t>& indices) {
    for (size_t i : indices) floor.Scan(units_[i]);
  }

  const std::vector<detect::Unit>& units() const { return units_; }
  const std::vector<uint32_t>& sessions() const { return sessions_; }
  std::vector<detect::FlowRuleState>& flows() { return flows_; }
  std::vector<detect::Alert>& alerts() { return alerts_; }

 private:
  void Shift(size_t i, int64_t pass) {
    units_[i].timestamp_ns = w_.units()[i].unit.timestamp_ns + pass * kPassShiftNs;
  }
  void Inspect(detect::RuleEngine& engine, size_t i) {
    alerts_.clear();
    engine.Inspect(units_[i], w_.tuples()[sessions_[i]], &flows_[sessions_[i]], &alerts_);
  }

  const Workload& w_;
  std::vector<detect::Unit> units_;
  std::vector<uint32_t> sessions_;
  std::vector<detect::FlowRuleState> flows_;
  std::vector<detect::Alert> alerts_;
};

void BM_EnginePerUnit(benchmark::State& state) {
  try {
    const Workload& w = Workload::Get();
    std::unique_ptr<detect::RuleEngine> engine = LoadEngine();
    Floor floor;
    Subject subject(w);
    const int64_t units = static_cast<int64_t>(w.units().size());
    int64_t pass = 0;
    std::vector<double> engine_ns, floor_ns, engine_cpu, floor_cpu;
    uint64_t floor_scans = 0;
    const double per_round = static_cast<double>(units * kPasses);
    while (state.KeepRunningBatch(units * kPasses)) {
      state.PauseTiming();
      double floor_round = 0, floor_round_cpu = 0;
      for (int p = 0; p < kPasses; ++p) {
        const double c0 = ThreadCpuNs();
        const double t0 = NowNs();
        floor_scans = subject.FloorPass(floor);
        floor_round += NowNs() - t0;
        floor_round_cpu += ThreadCpuNs() - c0;
      }
      floor_ns.push_back(floor_round / per_round);
      floor_cpu.push_back(floor_round_cpu / per_round);
      double engine_round = 0, engine_round_cpu = 0;
      for (int p = 0; p < kPasses; ++p) {
        subject.Prepare(pass++);
        const Work before = Work::Of(engine->counters());
        state.ResumeTiming();
        const double c0 = ThreadCpuNs();
        const double t0 = NowNs();
        subject.Pass(*engine);
        const double t1 = NowNs();
        const double c1 = ThreadCpuNs();
        state.PauseTiming();
        engine_round += t1 - t0;
        engine_round_cpu += c1 - c0;
        // Every pass must do the work of the checked one.
        const Work done = Work::Of(engine->counters()) - before;
        if (!(done == w.reference())) {
          throw PathError("pass " + std::to_string(pass - 1) + " did " + done.ToString() +
                          ", expected " + w.reference().ToString());
        }
      }
      engine_ns.push_back(engine_round / per_round);
      engine_cpu.push_back(engine_round_cpu / per_round);
      if (engine_ns.size() == kRounds) {
        // The reported time is the median round's, for every iteration.
        state.SetIterationTime(Median(engine_ns) * 1e-9 * per_round * kRounds);
      }
      state.ResumeTiming();
    }
    CheckNoLoss(engine->counters());
    const double ns = Median(engine_ns);
    const double raw = Median(floor_ns);
    const Work& ref = w.reference();
    const double n = static_cast<double>(ref.units);
    state.counters["ns_per_unit"] = ns;
    state.counters["raw_hs_scan_ns"] = raw;
    state.counters["ratio_to_raw_hyperscan"] = ns / raw;
    state.counters["ns_above_raw"] = ns - raw;
    // The same from thread CPU time: time lost to the other tenants while
    // preempted is not in it.
    state.counters["cpu_ns_per_unit"] = Median(engine_cpu);
    state.counters["cpu_raw_hs_scan_ns"] = Median(floor_cpu);
    state.counters["cpu_ratio_to_raw"] = Median(engine_cpu) / Median(floor_cpu);
    state.counters["units"] = n;
    state.counters["scans_per_unit"] = ref.scans / n;
    state.counters["raw_scans_per_unit"] = floor_scans / n;
    state.counters["candidates_per_unit"] = ref.candidates / n;
    state.counters["alerts_per_pass"] = static_cast<double>(ref.alerts);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// The kind of a unit for engine_kind: a command by its verb, a response by
// its status and whether a number follows (the lines the response rules
// read on), SASL data, an anomaly.
std::string KindOf(const detect::Unit& unit) {
  if (unit.anomaly) return "anomaly";
  if (std::optional<std::string_view> verb = unit.Get(rules::Buffer::kPop3Command)) {
    return "command_" + std::string(*verb);
  }
  if (unit.Get(rules::Buffer::kPop3Sasl)) return "sasl";
  const std::string_view line = unit.Get(rules::Buffer::kPop3Response).value_or("");
  if (line.starts_with("+OK ")) {
    return line.size() > 4 && line[4] >= '0' && line[4] <= '9' ? "response_ok_number"
                                                               : "response_ok_text";
  }
  return line.starts_with("-ERR") ? "response_err" : "response_other";
}

// The unit indices of each kind; kinds with fewer than kMinKindUnits
// units pooled by what they are (the attacks' rare verbs, mostly).
std::map<std::string, std::vector<size_t>> UnitsByKind(const Workload& w) {
  std::map<std::string, std::vector<size_t>> kinds;
  for (size_t i = 0; i < w.units().size(); ++i) kinds[KindOf(w.units()[i].unit)].push_back(i);
  std::map<std::string, std::vector<size_t>> pooled;
  for (auto& [kind, indices] : kinds) {
    std::string name = kind;
    if (indices.size() < kMinKindUnits) name = kind.substr(0, kind.find('_')) + "_rare";
    std::vector<size_t>& into = pooled[name];
    into.insert(into.end(), indices.begin(), indices.end());
  }
  for (auto& [kind, indices] : pooled) std::sort(indices.begin(), indices.end());
  return pooled;
}

// Where engine_per_unit's time goes: the same interleaved rounds over the
// units of one kind. The time column is the engine's ns for this kind's
// units in one pass of the workload, so the kinds' times add up to the
// engine's (up to the branch history a mixed pass lacks); ns_above_raw
// says how much of that is above the floor.
void BM_EngineKind(benchmark::State& state, const std::vector<size_t>* indices) {
  try {
    const Workload& w = Workload::Get();
    std::unique_ptr<detect::RuleEngine> engine = LoadEngine();
    Floor floor;
    Subject subject(w);
    const double per_round = static_cast<double>(indices->size() * kPasses);
    std::vector<double> engine_ns;
    std::vector<double> floor_ns;
    int64_t pass = 0;
    for (auto _ : state) {
      for (int round = 0; round < kRounds; ++round) {
        const double t0 = NowNs();
        for (int p = 0; p < kPasses; ++p) subject.FloorPass(floor, *indices);
        floor_ns.push_back((NowNs() - t0) / per_round);
        double engine_round = 0;
        for (int p = 0; p < kPasses; ++p) {
          subject.Prepare(pass++, *indices);
          const double t1 = NowNs();
          subject.Pass(*engine, *indices);
          engine_round += NowNs() - t1;
        }
        engine_ns.push_back(engine_round / per_round);
      }
      const double units = static_cast<double>(indices->size());
      state.SetIterationTime(Median(engine_ns) * units * 1e-9);
      state.counters["units"] = units;
      state.counters["ns_per_unit"] = Median(engine_ns);
      state.counters["raw_hs_scan_ns"] = Median(floor_ns);
      state.counters["ratio_to_raw_hyperscan"] = Median(engine_ns) / Median(floor_ns);
      state.counters["ns_above_raw"] = (Median(engine_ns) - Median(floor_ns)) * units;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// ---------------------------------------------------------------- replays

void CheckReplay(const replay::ReplayStats& stats, const std::vector<AlertKey>& alerts) {
  const Workload& w = Workload::Get();
  if (stats.capture_error || stats.frames != w.stats().frames || stats.test_run_errors ||
      stats.unconvertible_frames) {
    throw PathError("the replay did not read every frame of the capture");
  }
  if (stats.inspector.stream_gaps || stats.inspector.overlap_conflicts) {
    throw PathError("the replay lost stream bytes: " + std::to_string(stats.inspector.stream_gaps) +
                    " gaps");
  }
  if (alerts != w.alerts()) {
    throw PathError("the replay raised " + std::to_string(alerts.size()) + " alerts, not the " +
                    std::to_string(w.alerts().size()) + " of the units");
  }
  CheckNoLoss(stats.engine);
}

void BM_ReplayNoPrefilter(benchmark::State& state) {
  try {
    const Workload& w = Workload::Get();
    std::vector<double> seconds;
    replay::ReplayStats stats;
    for (auto _ : state) {
      state.PauseTiming();
      std::unique_ptr<detect::RuleEngine> engine = LoadEngine();
      std::vector<AlertKey> alerts;
      replay::ReplayOptions options;
      options.capture_path = w.capture();
      options.prefilter = false;
      state.ResumeTiming();
      const double t0 = NowNs();
      stats = replay::Replay(options, engine.get(),
                             [&](const detect::Alert& a) { alerts.push_back(KeyOf(a)); });
      const double t1 = NowNs();
      state.PauseTiming();
      seconds.push_back((t1 - t0) * 1e-9);
      std::sort(alerts.begin(), alerts.end());
      CheckReplay(stats, alerts);
      if (!(Work::Of(stats.engine) == w.reference())) {
        throw PathError("the replay did " + Work::Of(stats.engine).ToString() + ", expected " +
                        w.reference().ToString());
      }
      if (seconds.size() == kReplayRounds) {
        state.SetIterationTime(Median(seconds) * kReplayRounds);
      }
      state.ResumeTiming();
    }
    const double median = Median(seconds);
    state.SetBytesProcessed(static_cast<int64_t>(stats.bytes) * state.iterations());
    state.counters["capture_MB"] = stats.bytes / 1e6;
    state.counters["payload_MB_per_s"] = stats.inspector.tcp_payload_bytes / 1e6 / median;
    state.counters["frames_per_s"] = stats.frames / median;
    state.counters["units_per_s"] = stats.engine.units / median;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_EscalatedByteRatio(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root: the replay runs the kernel programs (BPF_PROG_TEST_RUN)");
    return;
  }
  try {
    const Workload& w = Workload::Get();
    replay::ReplayStats stats;
    for (auto _ : state) {
      state.PauseTiming();
      std::unique_ptr<detect::RuleEngine> engine = LoadEngine();
      std::vector<AlertKey> alerts;
      replay::ReplayOptions options;
      options.capture_path = w.capture();
      options.prefilter = true;
      options.kernel = test::SharedKernel(PG_MAX_FLOWS);
      // As the agent configures the kernel: the rules set its thresholds.
      options.kernel_config = detect::PlanKernel(engine->rules(), DefaultConfig()).config;
      state.ResumeTiming();
      const double t0 = NowNs();
      stats = replay::Replay(options, engine.get(),
                             [&](const detect::Alert& a) { alerts.push_back(KeyOf(a)); });
      state.SetIterationTime((NowNs() - t0) * 1e-9);
      state.PauseTiming();
      std::sort(alerts.begin(), alerts.end());
      // The kernel keeps the bodies; the alerts must be those of the
      // replay without it.
      CheckReplay(stats, alerts);
      state.ResumeTiming();
    }
    const Counters& k = *stats.kernel;
    for (int index : {PG_CNT_RINGBUF_FULL, PG_CNT_BUDGET_FLOW, PG_CNT_BUDGET_GLOBAL,
                      PG_CNT_FLOW_CREATE_FAILED, PG_CNT_OVERSIZE}) {
      if (k[index]) {
        throw PathError("kernel loss: pg_counters[" + std::to_string(index) +
                        "] = " + std::to_string(k[index]));
      }
    }
    const uint64_t payload = k[PG_CNT_PAYLOAD_BYTES_TO_SERVER] + k[PG_CNT_PAYLOAD_BYTES_TO_CLIENT];
    const WorkloadStats& s = w.stats();
    if (payload != s.payload_to_server + s.payload_to_client) {
      throw PathError("the kernel counted " + std::to_string(payload) +
                      " POP3 payload bytes, the capture holds " +
                      std::to_string(s.payload_to_server + s.payload_to_client));
    }
    const double records = static_cast<double>(k[PG_CNT_EVENTS]);
    const double p = static_cast<double>(payload);
    state.counters["payload_MB"] = p / 1e6;
    state.counters["records"] = records;
    state.counters["record_payload_bytes"] = static_cast<double>(k[PG_CNT_EVENT_BYTES]);
    state.counters["record_payload_pct"] = 100 * k[PG_CNT_EVENT_BYTES] / p;
    // What the records took in the ring, the kernel's record headers and
    // the flow keys included: the bandwidth the prefilter costs.
    state.counters["ring_bytes_pct"] = 100 * k[PG_CNT_RECORD_BYTES] / p;
    state.counters["raw_segments"] = static_cast<double>(k[PG_CNT_RAW_SEGMENTS]);
    state.counters["escalations"] = static_cast<double>(k[PG_CNT_ESCALATIONS]);
    state.counters["anomalies"] = static_cast<double>(k[PG_CNT_ANOMALIES]);
    state.counters["bodies_elided"] = static_cast<double>(stats.inspector.bodies_elided);
    const auto& by_type = stats.inspector.kernel_events_by_type;
    std::fprintf(stderr,
                 "escalated_byte_ratio: records by type: client_data %llu, server_line %llu, "
                 "body %llu, raw %llu, tls_record %llu, anomaly %llu\n",
                 static_cast<unsigned long long>(by_type[PG_EV_CLIENT_DATA]),
                 static_cast<unsigned long long>(by_type[PG_EV_SERVER_LINE]),
                 static_cast<unsigned long long>(by_type[PG_EV_BODY]),
                 static_cast<unsigned long long>(by_type[PG_EV_RAW]),
                 static_cast<unsigned long long>(by_type[PG_EV_TLS_RECORD]),
                 static_cast<unsigned long long>(by_type[PG_EV_ANOMALY]));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

int Main(int argc, char** argv) {
  PinToCurrentCpu();

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  int64_t units = 0;
  try {
    units = static_cast<int64_t>(Workload::Get().units().size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "building the workload: %s\n", e.what());
    return 1;
  }
  // An iteration is one unit: the time column is the median round's ns
  // per unit, the CPU column the engine passes' CPU time per unit.
  benchmark::RegisterBenchmark("engine_per_unit", BM_EnginePerUnit)
      ->Iterations(units * kPasses * kRounds)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
  // An iteration is all rounds; the time column is ns per workload pass.
  static const std::map<std::string, std::vector<size_t>> kinds = UnitsByKind(Workload::Get());
  for (const auto& [kind, indices] : kinds) {
    benchmark::RegisterBenchmark(("engine_kind/" + kind).c_str(), BM_EngineKind, &indices)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  // An iteration is one replay of the whole capture.
  benchmark::RegisterBenchmark("replay_no_prefilter_bytes_per_second", BM_ReplayNoPrefilter)
      ->Iterations(kReplayRounds)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("escalated_byte_ratio", BM_EscalatedByteRatio)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace popguard::bench

int main(int argc, char** argv) { return popguard::bench::Main(argc, argv); }

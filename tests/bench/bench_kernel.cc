// Kernel cost of the prefilter per packet, measured with BPF_PROG_TEST_RUN
// and compared with an XDP program that does nothing (the floor). How to read
// the results: docs/PERFORMANCE.md.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "agent/prefilter/prefilter.h"
#include "bench_util.h"
#include "floor_bpf.skel.h"
#include "flow_key.h"
#include "packet_builder.h"
#include "popguard_bench_bpf.skel.h"

namespace popguard::bench {
namespace {

using test::Flow;
using test::KeyV4;
using test::Packet;

// The kernel reports a whole number of ns per repeat, averaged over the
// round; a million repeats make that mean steady. The median over rounds
// discards rounds disturbed by the other tenants of a shared machine.
constexpr uint32_t kRepeat = 1'000'000;
constexpr int kRounds = 9;
static_assert(kRounds % 2 == 1, "the median must be one round, not a mean of two");

// One full-size segment: the MSS at MTU 1500 with TCP timestamps.
constexpr size_t kBodySegment = 1448;

// Events are drained between rounds only, so one round's records must fit.
// A record is at most its head, key and data behind the kernel's header,
// 8-byte aligned: 304 bytes. The attack writes three per packet (its line
// in two client-data records, and the anomaly), at most 912 MB per round.
constexpr uint64_t kRecordBytes = (PG_RECORD_MAX + BPF_RINGBUF_HDR_SZ + 7) / 8 * 8;
constexpr uint32_t kRingBytes = 1u << 30;

constexpr char kClientIp[] = "10.1.0.1";
constexpr char kServerIp[] = "10.1.0.2";
constexpr uint16_t kPop3Port = 110;

// A case that did not take the path its name claims: timing it would
// report the cost of something else.
class PathError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FloorDeleter {
  void operator()(floor_bpf* skel) const { floor_bpf__destroy(skel); }
};

std::span<const uint8_t> BenchObject() {
  size_t size = 0;
  const void* elf = popguard_bench_bpf__elf_bytes(&size);
  return {static_cast<const uint8_t*>(elf), size};
}

// Loading verifies the programs, which takes seconds: one set serves every
// benchmark. `product` is the build without the rewind, which can open a
// POP3 session (see Establish).
class Harness {
 public:
  static Harness& Get() {
    static Harness harness;
    return harness;
  }

  Prefilter& bench() { return bench_; }
  Prefilter& product() { return product_; }
  int floor_fd() const { return bpf_program__fd(floor_->progs.pg_floor); }

 private:
  Harness()
      : bench_(PrefilterOptions{.ring_buffer_bytes = kRingBytes, .object = BenchObject()}),
        floor_(floor_bpf__open_and_load()) {
    if (!floor_) throw PrefilterError(std::string("loading the floor program: ") + strerror(errno));
  }

  Prefilter bench_;
  Prefilter product_;
  std::unique_ptr<floor_bpf, FloorDeleter> floor_;
};

Harness* HarnessOrSkip(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root: BPF_PROG_TEST_RUN loads and runs BPF programs");
    return nullptr;
  }
  try {
    return &Harness::Get();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

uint32_t RunFloor(int fd, std::span<const uint8_t> frame) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = kRepeat);
  if (int err = bpf_prog_test_run_opts(fd, &opts)) {
    throw PrefilterError(std::string("BPF_PROG_TEST_RUN of the floor: ") + strerror(-err));
  }
  if (opts.retval != XDP_PASS) throw PathError("the floor did not return XDP_PASS");
  return opts.duration;
}

// Alternates floor and subject rounds so that both see the same machine,
// and reports the medians. Each round is one batch of kRepeat iterations:
// `run` makes the kRepeat runs and returns the kernel's ns per run;
// `settle` checks and clears what the round left, off the clock.
void Measure(benchmark::State& state, int floor_fd, std::span<const uint8_t> frame,
             const std::function<uint32_t()>& run, const std::function<void()>& settle) {
  std::vector<double> floor_ns, subject_ns;
  while (state.KeepRunningBatch(kRepeat)) {
    state.PauseTiming();
    floor_ns.push_back(RunFloor(floor_fd, frame));
    state.ResumeTiming();
    subject_ns.push_back(run());
    state.PauseTiming();
    settle();
    if (subject_ns.size() == kRounds) {
      // The reported time is the median round's, for every iteration.
      state.SetIterationTime(Median(subject_ns) * 1e-9 * kRepeat * kRounds);
    }
    state.ResumeTiming();
  }
  const double ns = Median(subject_ns);
  const double floor = Median(floor_ns);
  state.counters["ns_per_packet"] = ns;
  state.counters["floor_ns"] = floor;
  state.counters["ratio_to_floor"] = ns / floor;
  state.counters["ns_above_floor"] = ns - floor;
}

pg_flow_key KeyOf(uint16_t client_port) {
  return KeyV4(kClientIp, client_port, kServerIp, kPop3Port);
}

// Mail text wrapped at 70 columns as a mail client sends it, exactly `size`
// bytes ending in CRLF, so that the segment ends between lines.
std::string BodyText(size_t size) {
  static constexpr std::string_view kText =
      "Hi all, following up on the quarterly review: the numbers for the northern region "
      "came in slightly above forecast, mostly thanks to the renewed contracts with both "
      "logistics partners. The updated spreadsheet is attached; let me know if anything "
      "looks off before the meeting on Thursday. We still need to settle the travel budget "
      "for the spring conference, so please send me your estimates by the end of the week. "
      "Best regards, Anna ";
  size_t at = 0;
  auto next_word = [&] {
    const size_t end = kText.find(' ', at);
    std::string_view word = kText.substr(at, end - at);
    at = end + 1 == kText.size() ? 0 : end + 1;
    return word;
  };
  std::string out, line;
  std::string_view word = next_word();
  // A full line is at most 72 bytes: stopping with more than that left
  // leaves 9 to 80 bytes, one last line of 7 to 78 characters.
  while (size - out.size() > 80) {
    while (line.empty() || line.size() + 1 + word.size() <= 70) {
      if (!line.empty()) line += ' ';
      line += word;
      word = next_word();
    }
    out += line + "\r\n";
    line.clear();
  }
  const size_t last = size - out.size() - 2;
  while (line.size() < last) {
    line += word;
    line += ' ';
    word = next_word();
  }
  out += line.substr(0, last) + "\r\n";
  return out;
}

// A prefilter case, ready to time: flow state in place, configuration set.
struct Case {
  Hook hook;
  std::vector<uint8_t> frame;
  pg_class cls;
  int client_data_records = 0;  // per run
  int anomalies = 0;            // PG_AN_LINE_OVER_THRESHOLD records per run
  // A flow that must still be inside a body after a run.
  std::optional<pg_flow_key> body_flow = std::nullopt;
};

void Prepare(Harness& h, const pg_config& config) {
  h.bench().Reset();
  h.bench().SetConfig(config);
}

// Opens a POP3 session (handshake, greeting, optionally RETR and its +OK)
// through the product programs, each direction at the hook a mail server
// sees it on, and copies the flow state it leaves into the benchmark
// instance. The rewind build cannot open a session itself: it empties the
// response queue before every packet, server replies included, so the
// greeting and the +OK find nothing pending, raise PG_AN_UNSOLICITED and
// escalate the server direction.
void Establish(Harness& h, Flow& flow, const pg_flow_key& key, bool in_retr_body) {
  Prefilter& product = h.product();
  product.Reset();
  auto client = [&](const std::vector<uint8_t>& frame) { product.TestRun(Hook::kXdp, frame); };
  auto server = [&](const std::vector<uint8_t>& frame) { product.TestRun(Hook::kTcEgress, frame); };
  client(flow.Syn());
  server(flow.SynAck());
  client(flow.Ack());
  server(flow.ToClient("+OK ready\r\n"));
  if (in_retr_body) {
    client(flow.ToServer("RETR 1\r\n"));
    server(flow.ToClient("+OK\r\n"));
  }
  for (const Event& e : product.DrainEvents()) {
    if (e.type == PG_EV_ANOMALY || e.type == PG_EV_RAW) {
      throw PathError("opening the session raised event type " + std::to_string(e.type) +
                      " (anomaly " + std::to_string(e.anomaly) + ")");
    }
  }
  const std::optional<pg_flow> state = product.LookupFlow(key);
  if (!state) throw PathError("opening the session left no flow");
  if ((state->dir[PG_DIR_TO_SERVER].flags | state->dir[PG_DIR_TO_CLIENT].flags) & PG_DF_ESCALATED) {
    throw PathError("opening the session escalated the flow");
  }
  if (in_retr_body && !(state->dir[PG_DIR_TO_CLIENT].flags & PG_DF_IN_BODY)) {
    throw PathError("the +OK to RETR did not open a body");
  }
  h.bench().UpdateFlow(key, *state);
}

std::vector<uint8_t> NonPop3Frame() {
  return Packet()
      .IPv4(kClientIp, kServerIp)
      .Tcp(40000, 80)
      .Seq(1)
      .Payload("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
      .Build();
}

Case NonPop3(Harness& h) {
  Prepare(h, DefaultConfig());
  return {.hook = Hook::kXdp, .frame = NonPop3Frame(), .cls = PG_CLASS_NON_POP3};
}

Case Pop3Command(Harness& h) {
  constexpr uint16_t kPort = 40001;
  Flow flow(kClientIp, kPort, kServerIp, kPop3Port);
  Prepare(h, DefaultConfig());
  Establish(h, flow, KeyOf(kPort), false);
  return {.hook = Hook::kXdp,
          .frame = flow.ToServer("USER alice\r\n"),
          .cls = PG_CLASS_TO_SERVER,
          .client_data_records = 1};
}

Case Body(Harness& h, Hook hook) {
  const uint16_t port = hook == Hook::kXdp ? 40002 : 40003;
  Flow flow(kClientIp, port, kServerIp, kPop3Port);
  Prepare(h, DefaultConfig());
  Establish(h, flow, KeyOf(port), true);
  return {.hook = hook,
          .frame = flow.ToClient(BodyText(kBodySegment)),
          .cls = PG_CLASS_TO_CLIENT,
          .body_flow = KeyOf(port)};
}

Case Attack(Harness& h) {
  constexpr uint16_t kPort = 40004;
  pg_config config = DefaultConfig();
  config.verb_threshold[PG_VERB_USER] = 64;
  Flow flow(kClientIp, kPort, kServerIp, kPop3Port);
  Prepare(h, config);
  Establish(h, flow, KeyOf(kPort), false);
  std::string line = "USER ";
  for (int i = 0; i < 50; ++i) line += "%s%n%x";
  line += "\r\n";
  // Client bytes go up in records of at most PG_EVENT_DATA bytes.
  const int records = static_cast<int>((line.size() + PG_EVENT_DATA - 1) / PG_EVENT_DATA);
  return {.hook = Hook::kXdp,
          .frame = flow.ToServer(line),
          .cls = PG_CLASS_TO_SERVER,
          .client_data_records = records,
          .anomalies = 1};
}

// Names the counter as enum pg_counter (bpf/popguard.h) indexes it.
std::string CounterValue(const Counters& c, int index) {
  return "pg_counters[" + std::to_string(index) + "] = " + std::to_string(c[index]);
}

struct NamedCounter {
  int index;
  const char* name;
};

// Any of these on a case's path means it was not the in-order path.
constexpr NamedCounter kOffPath[] = {
    {PG_CNT_RAW_SEGMENTS, "PG_CNT_RAW_SEGMENTS"},
    {PG_CNT_ESCALATIONS, "PG_CNT_ESCALATIONS"},
    {PG_CNT_MIDSTREAM_MISS, "PG_CNT_MIDSTREAM_MISS"},
    {PG_CNT_OVERLAP, "PG_CNT_OVERLAP"},
    {PG_CNT_GAP, "PG_CNT_GAP"},
    {PG_CNT_RINGBUF_FULL, "PG_CNT_RINGBUF_FULL"},
    {PG_CNT_FLOWS_CREATED, "PG_CNT_FLOWS_CREATED"},
};

// One run, checked: a case must take the path its name claims, or its
// timing would be the cost of something else.
Counters VerifyOneRun(Prefilter& pf, const Case& c) {
  pf.ResetCounters();
  pf.DrainEvents();
  const int ret = pf.TestRun(c.hook, c.frame);
  const Counters n = pf.ReadCounters();
  const std::vector<Event> events = pf.DrainEvents();

  if (ret != (c.hook == Hook::kXdp ? XDP_PASS : TC_ACT_OK)) {
    throw PathError("verdict " + std::to_string(ret) + " instead of pass");
  }
  if (PacketCount(n, c.hook, c.cls) != 1) {
    throw PathError("the packet was not counted in class " + std::to_string(c.cls));
  }
  for (const NamedCounter& counter : kOffPath) {
    if (n[counter.index] != 0) {
      throw PathError(std::string(counter.name) + " = " + std::to_string(n[counter.index]) +
                      " after one run, expected 0");
    }
  }
  int client_data = 0, anomalies = 0;
  for (const Event& e : events) {
    if (e.type == PG_EV_CLIENT_DATA) {
      ++client_data;
    } else if (e.type == PG_EV_ANOMALY && e.anomaly == PG_AN_LINE_OVER_THRESHOLD) {
      ++anomalies;
    } else {
      throw PathError("unexpected event type " + std::to_string(e.type) + " (anomaly " +
                      std::to_string(e.anomaly) + ")");
    }
  }
  if (client_data != c.client_data_records || anomalies != c.anomalies ||
      n[PG_CNT_ANOMALIES] != static_cast<uint64_t>(c.anomalies) ||
      n[PG_CNT_EVENTS] != events.size()) {
    throw PathError("one run sent " + std::to_string(client_data) + " client-data and " +
                    std::to_string(anomalies) + " anomaly records (PG_CNT_ANOMALIES = " +
                    std::to_string(n[PG_CNT_ANOMALIES]) + "), expected " +
                    std::to_string(c.client_data_records) + " and " + std::to_string(c.anomalies));
  }
  if (c.body_flow) {
    const std::optional<pg_flow> flow = pf.LookupFlow(*c.body_flow);
    if (!flow || !(flow->dir[PG_DIR_TO_CLIENT].flags & PG_DF_IN_BODY) ||
        (flow->dir[PG_DIR_TO_CLIENT].flags & PG_DF_ESCALATED)) {
      throw PathError("the body segment did not stay in body mode");
    }
  }
  if (events.size() * kRecordBytes * kRepeat > kRingBytes) {
    throw PathError("one round's records overflow the " + std::to_string(kRingBytes >> 20) +
                    " MiB ring buffer");
  }
  return n;
}

// Every repeat must do what the verified run did: a round's counters are
// exactly kRepeat times that run's.
void CheckRound(const Counters& one, const Counters& round) {
  if (round[PG_CNT_RINGBUF_FULL] != 0) {
    throw PathError("the ring buffer filled: PG_CNT_RINGBUF_FULL = " +
                    std::to_string(round[PG_CNT_RINGBUF_FULL]) + " records lost in one round");
  }
  for (int index = 0; index < PG_CNT__MAX; ++index) {
    if (round[index] != one[index] * kRepeat) {
      throw PathError(CounterValue(round, index) + " after " + std::to_string(kRepeat) +
                      " repeats, expected " + std::to_string(one[index] * kRepeat));
    }
  }
}

void BM_Floor(benchmark::State& state) {
  Harness* h = HarnessOrSkip(state);
  if (!h) return;
  try {
    const std::vector<uint8_t> frame = NonPop3Frame();
    Measure(
        state, h->floor_fd(), frame, [&] { return RunFloor(h->floor_fd(), frame); }, [] {});
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_Prefilter(benchmark::State& state, Case (*make)(Harness&)) {
  Harness* h = HarnessOrSkip(state);
  if (!h) return;
  try {
    const Case c = make(*h);
    Prefilter& pf = h->bench();
    const Counters one = VerifyOneRun(pf, c);
    pf.ResetCounters();
    uint64_t ringbuf_full = 0;
    Measure(
        state, h->floor_fd(), c.frame,
        [&] {
          uint32_t ns = 0;
          pf.TestRun(c.hook, c.frame, kRepeat, &ns);
          return ns;
        },
        [&] {
          const Counters round = pf.ReadCounters();
          pf.DrainEvents();
          pf.ResetCounters();
          ringbuf_full += round[PG_CNT_RINGBUF_FULL];
          CheckRound(one, round);
        });
    state.counters["events_per_packet"] = static_cast<double>(one[PG_CNT_EVENTS]);
    state.counters["ringbuf_full"] = static_cast<double>(ringbuf_full);
    if (c.body_flow) {
      state.counters["ns_per_byte_above_floor"] = state.counters["ns_above_floor"] / kBodySegment;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void Register(const char* name, const std::function<void(benchmark::State&)>& fn) {
  // An iteration is one packet: the time column is the median round's ns
  // per packet as the kernel measured it, the CPU column the thread's CPU
  // time in the timed test runs (mostly kernel time) per packet.
  benchmark::RegisterBenchmark(name, fn)
      ->Iterations(int64_t{kRepeat} * kRounds)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

std::function<void(benchmark::State&)> OnPrefilter(Case (*make)(Harness&)) {
  return [make](benchmark::State& state) { BM_Prefilter(state, make); };
}

int Main(int argc, char** argv) {
  PinToCurrentCpu();

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Register("floor", BM_Floor);
  Register("non_pop3", OnPrefilter(NonPop3));
  Register("pop3_command", OnPrefilter(Pop3Command));
  Register("body_xdp", OnPrefilter([](Harness& h) { return Body(h, Hook::kXdp); }));
  Register("body_tc", OnPrefilter([](Harness& h) { return Body(h, Hook::kTcEgress); }));
  Register("attack", OnPrefilter(Attack));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace popguard::bench

int main(int argc, char** argv) { return popguard::bench::Main(argc, argv); }

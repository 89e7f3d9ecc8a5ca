#include "agent/prefilter/prefilter.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "popguard_bpf.skel.h"

namespace popguard {
namespace {

std::string Why(int err) { return std::strerror(err < 0 ? -err : err); }

[[noreturn]] void Fail(const std::string& what, int err) {
  throw PrefilterError(what + ": " + Why(err));
}

constexpr size_t kPortsSize = 65536;  // pg_port_kind: one byte per port

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

int Prefilter::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Prefilter*>(ctx);
  Event& ev = self->pending_.emplace_back();
  if (!self->decoder_.Decode({static_cast<const uint8_t*>(data), size}, self->drain_clock_ns_, &ev))
    self->pending_.pop_back();
  return 0;
}

EventDecoder Prefilter::NewDecoder(uint32_t flow_map_entries) {
  return EventDecoder(flow_map_entries, [this](const auto& visit) {
    int fd = MapFd("pg_flows");
    pg_flow_key key{}, next{};
    pg_flow flow{};
    for (const pg_flow_key* at = nullptr; bpf_map_get_next_key(fd, at, &next) == 0; at = &key) {
      key = next;
      if (bpf_map_lookup_elem(fd, &key, &flow) == 0) visit(static_cast<uint32_t>(flow.id), key);
    }
  });
}

pg_config DefaultConfig() {
  pg_config c{};
  c.mode = PG_MODE_DETECT;
  c.clock_mode = PG_CLOCK_MONOTONIC;
  return c;
}

Prefilter::Prefilter(const PrefilterOptions& options)
    : flow_map_entries_(options.flow_map_entries), decoder_(NewDecoder(options.flow_map_entries)) {
  std::span<const uint8_t> elf = options.object;
  if (elf.empty()) {
    size_t size = 0;
    const void* bytes = popguard_bpf__elf_bytes(&size);
    elf = {static_cast<const uint8_t*>(bytes), size};
  }
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .object_name = "popguard");
  obj_ = bpf_object__open_mem(elf.data(), elf.size(), &open_opts);
  if (!obj_) Fail("opening the popguard BPF object", errno);
  try {
    auto map = [&](const char* name) {
      bpf_map* m = bpf_object__find_map_by_name(obj_, name);
      if (!m) throw PrefilterError(std::string("the BPF object has no map ") + name);
      return m;
    };
    if (int err = bpf_map__set_max_entries(map("pg_flows"), options.flow_map_entries))
      Fail("sizing pg_flows", err);
    if (int err = bpf_map__set_max_entries(map("pg_events"), options.ring_buffer_bytes))
      Fail("sizing pg_events", err);
    if (int err = bpf_object__load(obj_))
      Fail("loading the popguard BPF programs (the verifier log is above; are you root, "
           "with BTF and a kernel >= 6.1?)",
           err);
    const char* names[] = {"pg_xdp", "pg_tc_egress", "pg_tc_ingress"};
    for (int i = 0; i < 3; ++i) {
      bpf_program* p = bpf_object__find_program_by_name(obj_, names[i]);
      if (!p) throw PrefilterError(std::string("the BPF object has no program ") + names[i]);
      prog_fd_[i] = bpf_program__fd(p);
    }
    // pg_port_kind lives in its own data section, a one-entry array map
    // created mmap-able; libbpf 1.1 maps it only for skeletons.
    if (bpf_map__value_size(map(".data.ports")) != kPortsSize)
      throw PrefilterError("the BPF object's .data.ports section is not a 64 KiB array");
    void* ports = mmap(nullptr, kPortsSize, PROT_READ | PROT_WRITE, MAP_SHARED, MapFd(".data.ports"), 0);
    if (ports == MAP_FAILED) Fail("mapping .data.ports", errno);
    ports_ = static_cast<uint8_t*>(ports);
    ring_ = ring_buffer__new(MapFd("pg_events"), OnRecord, this, nullptr);
    if (!ring_) Fail("opening the event ring buffer", errno);
    Reset();
  } catch (...) {
    ring_buffer__free(ring_);
    if (ports_) munmap(ports_, kPortsSize);
    bpf_object__close(obj_);
    throw;
  }
}

Prefilter::~Prefilter() {
  ring_buffer__free(ring_);
  munmap(ports_, kPortsSize);
  bpf_object__close(obj_);
}

int Prefilter::MapFd(const char* name) const {
  bpf_map* map = bpf_object__find_map_by_name(obj_, name);
  if (!map) throw PrefilterError(std::string("no map named ") + name);
  return bpf_map__fd(map);
}

void Prefilter::ClearHashMap(const char* name, size_t key_size) {
  int fd = MapFd(name);
  std::vector<uint8_t> key(key_size), next(key_size);
  // Deleting while iterating restarts the walk; always take the first key.
  while (bpf_map_get_next_key(fd, nullptr, next.data()) == 0) {
    if (int err = bpf_map_delete_elem(fd, next.data())) Fail(std::string("clearing ") + name, err);
  }
}

void Prefilter::Reset() {
  ClearHashMap("pg_flows", sizeof(pg_flow_key));
  ClearHashMap("pg_block_flows", sizeof(pg_flow_key));
  ClearHashMap("pg_block_addrs", sizeof(pg_addr_key));
  ClearHashMap("pg_resync", sizeof(pg_flow_key));
  SetBlocklistActive(false);
  int ncpu = libbpf_num_possible_cpus();
  std::vector<pg_budget> budgets(ncpu > 0 ? ncpu : 1);
  for (uint32_t index = 0; index < PG_BUDGET__MAX; ++index) {
    if (int err = bpf_map_update_elem(MapFd("pg_global_budget"), &index, budgets.data(), BPF_ANY))
      Fail("resetting pg_global_budget", err);
  }
  ResetCounters();
  SetConfig(DefaultConfig());
  std::memset(ports_, 0, kPortsSize);
  SetPort(110, PG_PORT_POP3);
  SetPort(995, PG_PORT_POP3_TLS);
  DrainEvents();
  decoder_ = NewDecoder(flow_map_entries_);
}

void Prefilter::SetConfig(const pg_config& config) {
  uint32_t zero = 0;
  if (int err = bpf_map_update_elem(MapFd("pg_config"), &zero, &config, BPF_ANY))
    Fail("writing pg_config", err);
  clock_fixed_ns_ = config.clock_mode == PG_CLOCK_FIXED ? std::optional(config.clock_ns) : std::nullopt;
}

pg_config Prefilter::Config() const {
  uint32_t zero = 0;
  pg_config c{};
  if (int err = bpf_map_lookup_elem(MapFd("pg_config"), &zero, &c)) Fail("reading pg_config", err);
  return c;
}

void Prefilter::SetPort(uint16_t port, uint8_t kind) {
  // The kernel indexes by the port's bytes as they sit in the TCP header.
  ports_[htons(port)] = kind;
}

int Prefilter::ProgramFd(Hook hook) const { return prog_fd_[static_cast<int>(hook)]; }

int Prefilter::TestRun(Hook hook, std::span<const uint8_t> packet, uint32_t repeat,
                       uint32_t* duration_ns) const {
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = packet.data();
  opts.data_size_in = static_cast<uint32_t>(packet.size());
  opts.repeat = repeat;
  if (int err = bpf_prog_test_run_opts(ProgramFd(hook), &opts))
    Fail("BPF_PROG_TEST_RUN of a " + std::to_string(packet.size()) + "-byte packet", errno ? errno : err);
  if (duration_ns) *duration_ns = opts.duration;
  return static_cast<int>(opts.retval);
}

std::vector<Event> Prefilter::DrainEvents() {
  pending_.clear();
  drain_clock_ns_ = clock_fixed_ns_ ? *clock_fixed_ns_ : MonotonicNs();
  if (int n = ring_buffer__consume(ring_); n < 0) Fail("reading the event ring buffer", n);
  return std::move(pending_);
}

Counters Prefilter::ReadCounters() const {
  Counters out{};
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) Fail("counting CPUs", ncpu);
  std::vector<uint64_t> per_cpu(ncpu);
  int fd = MapFd("pg_counters");
  for (uint32_t i = 0; i < PG_CNT__MAX; ++i) {
    if (int err = bpf_map_lookup_elem(fd, &i, per_cpu.data())) Fail("reading pg_counters", err);
    for (uint64_t v : per_cpu) out[i] += v;
  }
  return out;
}

void Prefilter::ResetCounters() {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> zeros(ncpu > 0 ? ncpu : 1);
  int fd = MapFd("pg_counters");
  for (uint32_t i = 0; i < PG_CNT__MAX; ++i) {
    if (int err = bpf_map_update_elem(fd, &i, zeros.data(), BPF_ANY)) Fail("resetting pg_counters", err);
  }
}

std::optional<pg_flow> Prefilter::LookupFlow(const pg_flow_key& key) const {
  pg_flow f{};
  if (bpf_map_lookup_elem(MapFd("pg_flows"), &key, &f)) return std::nullopt;
  return f;
}

void Prefilter::UpdateFlow(const pg_flow_key& key, const pg_flow& flow) {
  if (int err = bpf_map_update_elem(MapFd("pg_flows"), &key, &flow, BPF_ANY)) Fail("writing pg_flows", err);
}

void Prefilter::OfferResync(const pg_flow_key& key, const pg_resync& offer) {
  if (int err = bpf_map_update_elem(MapFd("pg_resync"), &key, &offer, BPF_ANY)) Fail("writing pg_resync", err);
}

void Prefilter::SetBlocklistActive(bool active) {
  uint32_t zero = 0;
  pg_runtime rt{};
  rt.blocklist_active = active;
  if (int err = bpf_map_update_elem(MapFd("pg_runtime"), &zero, &rt, BPF_ANY))
    Fail("writing pg_runtime", err);
}

void Prefilter::BlockFlow(const pg_flow_key& key, uint64_t expires_ns) {
  pg_block b{expires_ns};
  if (int err = bpf_map_update_elem(MapFd("pg_block_flows"), &key, &b, BPF_ANY))
    Fail("writing pg_block_flows", err);
  SetBlocklistActive(true);
}

void Prefilter::BlockAddress(const pg_addr_key& key, uint64_t expires_ns) {
  pg_block b{expires_ns};
  if (int err = bpf_map_update_elem(MapFd("pg_block_addrs"), &key, &b, BPF_ANY))
    Fail("writing pg_block_addrs", err);
  SetBlocklistActive(true);
}

bool Prefilter::IsFlowBlocked(const pg_flow_key& key) const {
  pg_block b{};
  return bpf_map_lookup_elem(MapFd("pg_block_flows"), &key, &b) == 0;
}

uint64_t PacketCount(const Counters& c, Hook hook, pg_class cls) {
  return c[PG_CNT_PKT + static_cast<int>(hook) * PG_CLASS__MAX + cls];
}

Attachment Attachment::Xdp(const Prefilter& prefilter, int ifindex, bool skb_mode) {
  uint32_t flags = skb_mode ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  if (int err = bpf_xdp_attach(ifindex, prefilter.ProgramFd(Hook::kXdp), flags, nullptr))
    Fail("attaching XDP to ifindex " + std::to_string(ifindex), err);
  return Attachment(Kind::kXdp, ifindex, false, flags);
}

Attachment Attachment::Tc(const Prefilter& prefilter, int ifindex, bool egress) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
              .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) Fail("creating the clsact qdisc on ifindex " + std::to_string(ifindex), err);
  LIBBPF_OPTS(bpf_tc_opts, opts,
              .prog_fd = prefilter.ProgramFd(egress ? Hook::kTcEgress : Hook::kTcIngress));
  if ((err = bpf_tc_attach(&hook, &opts)))
    Fail("attaching TC " + std::string(egress ? "egress" : "ingress") + " to ifindex " +
             std::to_string(ifindex),
         err);
  return Attachment(Kind::kTc, ifindex, egress, 0);
}

Attachment::Attachment(Attachment&& other) noexcept
    : kind_(other.kind_), ifindex_(other.ifindex_), egress_(other.egress_),
      xdp_flags_(other.xdp_flags_) {
  other.kind_ = Kind::kNone;
}

Attachment::~Attachment() {
  if (kind_ == Kind::kXdp) {
    bpf_xdp_detach(ifindex_, xdp_flags_, nullptr);
  } else if (kind_ == Kind::kTc) {
    // Destroying the hook removes the clsact qdisc with every filter on it.
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_,
                .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    bpf_tc_hook_destroy(&hook);
  }
}

}  // namespace popguard

// What one rule evaluation looks at: a POP3 event turned into the buffers
// rules name (DESIGN.md, "Rules"), plus the flow it belongs to.
//
// One unit per event of agent/pop3/session.h:
//   command        payload = the line with its line end, pop3.command = the
//                  verb upper-cased, pop3.args = the arguments as sent
//   SASL data      payload = the line, pop3.sasl = strict base64 decoding;
//                  from the server also pop3.response = the line and, for
//                  DIGEST-MD5, pop3.digest_realm = the realm libcurl 7.28
//                  would copy
//   response       payload = the first line with its line end,
//                  pop3.response = the first line without it
//   anomaly        only the anomaly's name (app-layer-event rules)
//   segment        only the TCP flags of a client's SYN (`flags` rules)
// Message bodies are never units: they stay in the kernel.
#pragma once

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "agent/pop3/event.h"
#include "agent/rules/ast.h"

namespace popguard::detect {

// The endpoints of a connection, as the rules' headers see them.
struct FlowTuple {
  rules::IpAddress client;
  rules::IpAddress server;
  uint16_t client_port = 0;
  uint16_t server_port = 0;
};

// The buffers a unit can carry, in the order the engine scans them: the
// order of rules::Buffer, so a buffer's value is its slot.
inline constexpr std::array<rules::Buffer, 6> kUnitBuffers = {
    rules::Buffer::kPayload,      rules::Buffer::kPop3Command, rules::Buffer::kPop3Args,
    rules::Buffer::kPop3Response, rules::Buffer::kPop3Sasl,    rules::Buffer::kPop3DigestRealm,
};

constexpr size_t UnitSlot(rules::Buffer buffer) { return static_cast<size_t>(buffer); }

static_assert([] {
  for (size_t i = 0; i < kUnitBuffers.size(); ++i) {
    if (UnitSlot(kUnitBuffers[i]) != i) return false;
  }
  return true;
}());

class Unit {
 public:
  pop3::Direction direction = pop3::Direction::kToServer;
  int64_t timestamp_ns = 0;
  // Set on anomaly units only.
  std::optional<rules::Pop3Event> anomaly;
  // Set on segment units only: a client's opening SYN (no ACK), which
  // carries no buffers, for the rules that test TCP flags.
  std::optional<uint8_t> tcp_flags;

  // The buffer a rule keyword reads; nullopt when this unit has none.
  // kBase64Data is never a unit buffer: it is made by base64_decode. The
  // engine asks for buffers on every candidate, so this is a bit test and
  // a load, not a switch.
  std::optional<std::string_view> Get(rules::Buffer buffer) const {
    const size_t slot = UnitSlot(buffer);
    if (!((present_ >> slot) & 1)) return std::nullopt;
    return views_[slot];
  }
  // The buffer's bytes when present() says the unit carries it: no
  // optional to build and return on the engine's hot path.
  std::string_view View(rules::Buffer buffer) const { return views_[UnitSlot(buffer)]; }
  // `buffer` must be one of kUnitBuffers.
  void Set(rules::Buffer buffer, std::string_view bytes) {
    const size_t slot = UnitSlot(buffer);
    assert(slot < views_.size());
    views_[slot] = bytes;
    present_ |= 1u << slot;
  }
  // Bit UnitSlot(b) set when the unit carries buffer b.
  uint32_t present() const { return present_; }

 private:
  std::array<std::string_view, kUnitBuffers.size()> views_{};
  uint32_t present_ = 0;
};

}  // namespace popguard::detect

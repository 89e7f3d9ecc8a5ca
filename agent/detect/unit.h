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
// Message bodies are never units: they stay in the kernel.
#pragma once

#include <array>
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

struct Unit {
  pop3::Direction direction = pop3::Direction::kToServer;
  int64_t timestamp_ns = 0;
  std::optional<std::string_view> payload;
  std::optional<std::string_view> command;
  std::optional<std::string_view> args;
  std::optional<std::string_view> response;
  std::optional<std::string_view> sasl;
  std::optional<std::string_view> digest_realm;
  // Set on anomaly units only.
  std::optional<rules::Pop3Event> anomaly;

  // The buffer a rule keyword reads; nullopt when this unit has none.
  // kBase64Data is never a unit buffer: it is made by base64_decode.
  std::optional<std::string_view> Get(rules::Buffer buffer) const {
    switch (buffer) {
      case rules::Buffer::kPayload:
        return payload;
      case rules::Buffer::kPop3Command:
        return command;
      case rules::Buffer::kPop3Args:
        return args;
      case rules::Buffer::kPop3Response:
        return response;
      case rules::Buffer::kPop3Sasl:
        return sasl;
      case rules::Buffer::kPop3DigestRealm:
        return digest_realm;
      case rules::Buffer::kBase64Data:
        return std::nullopt;
    }
    return std::nullopt;
  }
};

// The buffers a unit can carry, in the order the engine scans them.
inline constexpr std::array<rules::Buffer, 6> kUnitBuffers = {
    rules::Buffer::kPayload,      rules::Buffer::kPop3Command, rules::Buffer::kPop3Args,
    rules::Buffer::kPop3Response, rules::Buffer::kPop3Sasl,    rules::Buffer::kPop3DigestRealm,
};

}  // namespace popguard::detect

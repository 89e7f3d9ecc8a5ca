#include "agent/rules/ast.h"

#include <arpa/inet.h>

#include <iterator>
#include <string>

namespace popguard::rules {

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  // inet_pton needs a terminated string; addresses are short.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string terminated(text);
  IpAddress address;
  if (inet_pton(AF_INET, terminated.c_str(), address.bytes.data()) == 1) return address;
  address.v6 = true;
  if (inet_pton(AF_INET6, terminated.c_str(), address.bytes.data()) == 1) return address;
  return std::nullopt;
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.v6 != base.v6) return false;
  int full_bytes = prefix_length / 8;
  for (int i = 0; i < full_bytes; ++i) {
    if (address.bytes[i] != base.bytes[i]) return false;
  }
  int rest = prefix_length % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address.bytes[full_bytes] & mask) == base.bytes[full_bytes];
}

std::string_view BufferName(Buffer buffer) {
  switch (buffer) {
    case Buffer::kPayload:
      return "payload";
    case Buffer::kPop3Command:
      return "pop3.command";
    case Buffer::kPop3Args:
      return "pop3.args";
    case Buffer::kPop3Response:
      return "pop3.response";
    case Buffer::kPop3Sasl:
      return "pop3.sasl";
    case Buffer::kPop3DigestRealm:
      return "pop3.digest_realm";
    case Buffer::kBase64Data:
      return "base64_data";
  }
  return "?";
}

namespace {

// In declaration order, so the position of a name is its enumerator.
constexpr std::string_view kPop3EventNames[] = {
    "too_many_transactions",
    "request_too_long",
    "incorrect_argument_count",
    "unknown_command",
    "response_too_long",
    "bad_status_token",
    "unterminated_line",
    "sasl_decode_failure",
    "unsolicited_response",
    "stls_command_injection",
    "stls_response_injection",
    "lf_without_cr",
    "reassembly_overlap_different_data",
    "event_budget_exceeded",
};
static_assert(std::size(kPop3EventNames) ==
              static_cast<size_t>(Pop3Event::kEventBudgetExceeded) + 1);

}  // namespace

std::string_view Pop3EventName(Pop3Event event) {
  return kPop3EventNames[static_cast<size_t>(event)];
}

std::optional<Pop3Event> Pop3EventNamed(std::string_view name) {
  for (size_t i = 0; i < std::size(kPop3EventNames); ++i) {
    if (kPop3EventNames[i] == name) return static_cast<Pop3Event>(i);
  }
  return std::nullopt;
}

std::span<const std::string_view> Pop3EventNames() { return kPop3EventNames; }

}  // namespace popguard::rules

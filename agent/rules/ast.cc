#include "agent/rules/ast.h"

#include <arpa/inet.h>

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

std::string_view Pop3EventName(Pop3Event event) {
  switch (event) {
    case Pop3Event::kTooManyTransactions:
      return "too_many_transactions";
    case Pop3Event::kRequestTooLong:
      return "request_too_long";
    case Pop3Event::kIncorrectArgumentCount:
      return "incorrect_argument_count";
    case Pop3Event::kUnknownCommand:
      return "unknown_command";
    case Pop3Event::kResponseTooLong:
      return "response_too_long";
    case Pop3Event::kBadStatusToken:
      return "bad_status_token";
    case Pop3Event::kUnterminatedLine:
      return "unterminated_line";
    case Pop3Event::kSaslDecodeFailure:
      return "sasl_decode_failure";
    case Pop3Event::kUnsolicitedResponse:
      return "unsolicited_response";
    case Pop3Event::kStlsCommandInjection:
      return "stls_command_injection";
    case Pop3Event::kStlsResponseInjection:
      return "stls_response_injection";
    case Pop3Event::kLfWithoutCr:
      return "lf_without_cr";
    case Pop3Event::kReassemblyOverlapDifferentData:
      return "reassembly_overlap_different_data";
    case Pop3Event::kEventBudgetExceeded:
      return "event_budget_exceeded";
  }
  return "?";
}

bool IntegerTest::Matches(uint64_t x) const {
  switch (op) {
    case Comparison::kEqual:
      return x == value;
    case Comparison::kNotEqual:
      return x != value;
    case Comparison::kLess:
      return x < value;
    case Comparison::kLessEqual:
      return x <= value;
    case Comparison::kGreater:
      return x > value;
    case Comparison::kGreaterEqual:
      return x >= value;
    case Comparison::kRange:
      return value < x && x < high;
  }
  return false;
}

}  // namespace popguard::rules

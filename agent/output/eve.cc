#include "agent/output/eve.h"

#include <arpa/inet.h>

#include <ctime>
#include <nlohmann/json.hpp>

namespace popguard::output {

namespace {

std::string AddressText(const rules::IpAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(address.v6 ? AF_INET6 : AF_INET, address.bytes.data(), text, sizeof text);
  return text;
}

// FNV-1a: cheap, deterministic, good enough to tell flows apart in a log.
uint64_t Mix(uint64_t hash, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

// JSON strings must be UTF-8; POP3 lines are bytes. Bytes outside printable
// ASCII are written as \xHH text, as Suricata's EVE does for payloads.
std::string Printable(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  char hex[5];
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

}  // namespace

std::string EveTimestamp(int64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000);
  const long micros = static_cast<long>((unix_ns % 1'000'000'000) / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[64];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof text - n, ".%06ld+0000", micros);
  return text;
}

uint64_t FlowId(const detect::FlowTuple& tuple) {
  uint64_t hash = 1469598103934665603ull;
  hash = Mix(hash, tuple.client.bytes.data(), tuple.client.bytes.size());
  hash = Mix(hash, tuple.server.bytes.data(), tuple.server.bytes.size());
  hash = Mix(hash, &tuple.client_port, sizeof tuple.client_port);
  hash = Mix(hash, &tuple.server_port, sizeof tuple.server_port);
  // Suricata's flow ids are positive 51-bit numbers (JSON-safe integers).
  return hash & ((1ull << 51) - 1);
}

std::string EveAlert(const detect::Alert& alert, AlertAction action) {
  const rules::Rule& rule = *alert.rule;
  const bool to_server = alert.direction == pop3::Direction::kToServer;
  nlohmann::ordered_json record;
  record["timestamp"] = EveTimestamp(alert.timestamp_ns);
  record["flow_id"] = FlowId(alert.tuple);
  record["event_type"] = "alert";
  record["src_ip"] = AddressText(to_server ? alert.tuple.client : alert.tuple.server);
  record["src_port"] = to_server ? alert.tuple.client_port : alert.tuple.server_port;
  record["dest_ip"] = AddressText(to_server ? alert.tuple.server : alert.tuple.client);
  record["dest_port"] = to_server ? alert.tuple.server_port : alert.tuple.client_port;
  record["proto"] = "TCP";
  record["app_proto"] = "pop3";
  record["direction"] = to_server ? "to_server" : "to_client";
  record["alert"] = {
      {"action", action == AlertAction::kBlocked ? "blocked" : "allowed"},
      {"gid", rule.gid},
      {"signature_id", rule.sid},
      {"rev", rule.rev},
      {"signature", Printable(rule.msg)},
      {"category", rule.category},
      {"severity", rule.priority},
  };
  nlohmann::ordered_json pop3 = nlohmann::ordered_json::object();
  if (!alert.command.empty()) {
    pop3["command"] = Printable(alert.command);
    pop3["args"] = Printable(alert.args);
  }
  if (!alert.response.empty()) pop3["response"] = Printable(alert.response);
  if (!alert.anomaly.empty()) pop3["anomaly"] = alert.anomaly;
  record["pop3"] = std::move(pop3);
  return record.dump();
}

}  // namespace popguard::output

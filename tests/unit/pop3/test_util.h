// Helpers shared by the POP3 parser tests: a base64 encoder written apart
// from the decoders under test, scripted sessions, and one-line event
// descriptions that make expected sequences readable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/pop3/event.h"
#include "agent/pop3/session.h"

namespace popguard::pop3::test {

inline std::string EncodeBase64(std::string_view plain) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < plain.size(); i += 3) {
    const size_t n = plain.size() - i < 3 ? plain.size() - i : 3;
    uint32_t group = 0;
    for (size_t j = 0; j < 3; ++j) {
      group = group << 8 | (j < n ? static_cast<uint8_t>(plain[i + j]) : 0u);
    }
    for (size_t j = 0; j < 4; ++j) {
      out.push_back(j <= n ? kAlphabet[group >> (18 - 6 * j) & 63] : '=');
    }
  }
  return out;
}

// One chunk of a scripted connection.
struct Step {
  Direction direction;
  std::string bytes;
};

inline Step Client(std::string bytes) { return {Direction::kToServer, std::move(bytes)}; }
inline Step Server(std::string bytes) { return {Direction::kToClient, std::move(bytes)}; }

// Feeds the script as written or, with `bytewise`, one byte per call.
inline std::vector<Event> RunScript(const std::vector<Step>& script, SessionOptions options = {},
                                    bool bytewise = false) {
  std::vector<Event> events;
  Session session([&events](const Event& event) { events.push_back(event); }, options);
  for (const Step& step : script) {
    const auto feed = [&](std::string_view bytes) {
      if (step.direction == Direction::kToServer) {
        session.OnClientData(bytes);
      } else {
        session.OnServerData(bytes);
      }
    };
    if (!bytewise) {
      feed(step.bytes);
      continue;
    }
    for (size_t i = 0; i < step.bytes.size(); ++i) feed(std::string_view(step.bytes).substr(i, 1));
  }
  return events;
}

// "C USER a", "RS +OK RETR", "R +OK RETR 5/120", "SC ok <decoded>",
// "SS ok <decoded>", "A name", "TLS".
inline std::string Describe(const Event& event) {
  switch (event.kind) {
    case EventKind::kCommand: {
      const auto& command = std::get<Command>(event.payload);
      return "C " + command.verb + (command.normalized_args.empty() ? "" : " ") +
             command.normalized_args;
    }
    case EventKind::kResponse: {
      const auto& response = std::get<Response>(event.payload);
      std::string out = "R " + response.status_token;
      if (!response.answers.empty()) out += " " + response.answers;
      if (response.greeting) out += " greeting";
      if (response.multi_line) {
        out +=
            " " + std::to_string(response.body_lines) + "/" + std::to_string(response.body_bytes);
      }
      return out;
    }
    case EventKind::kResponseStart: {
      const auto& response = std::get<Response>(event.payload);
      return "RS " + response.status_token + " " + response.answers;
    }
    case EventKind::kSaslClient:
    case EventKind::kSaslServer: {
      const auto& sasl = std::get<SaslMessage>(event.payload);
      std::string out = event.kind == EventKind::kSaslClient ? "SC " : "SS ";
      if (sasl.cancelled) return out + "*";
      return out + (sasl.decoded_ok ? "ok " + sasl.decoded : "bad " + sasl.text);
    }
    case EventKind::kAnomaly:
      return "A " + std::string(std::get<Anomaly>(event.payload).name);
    case EventKind::kTlsStarted:
      return "TLS";
  }
  return "?";
}

inline std::vector<std::string> Describe(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& event : events) out.push_back(Describe(event));
  return out;
}

inline std::vector<std::string_view> Anomalies(const std::vector<Event>& events) {
  std::vector<std::string_view> names;
  for (const Event& event : events) {
    if (event.kind == EventKind::kAnomaly) names.push_back(std::get<Anomaly>(event.payload).name);
  }
  return names;
}

inline size_t CountAnomaly(const std::vector<Event>& events, std::string_view name) {
  size_t count = 0;
  for (std::string_view found : Anomalies(events)) count += found == name;
  return count;
}

// The events of one kind, in order.
inline std::vector<Event> OfKind(const std::vector<Event>& events, EventKind kind) {
  std::vector<Event> out;
  for (const Event& event : events) {
    if (event.kind == kind) out.push_back(event);
  }
  return out;
}

}  // namespace popguard::pop3::test

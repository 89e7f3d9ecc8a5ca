// libFuzzer entry for the POP3 session parser. The input is a script: the
// first byte picks the limits (odd: tiny ones, so every limit path runs),
// then chunks, each a header byte (bit 0: 1 for server data, 0 for client
// data; the other bits: length - 1) followed by its bytes. Besides the
// sanitizers, one oracle: feeding every chunk one byte at a time must give
// exactly the same events.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/pop3/session.h"

namespace {

using popguard::pop3::Event;
using popguard::pop3::Session;
using popguard::pop3::SessionOptions;

SessionOptions OptionsFrom(uint8_t knobs) {
  SessionOptions options;
  if (knobs & 1) {
    options.max_request_line = 4 + (knobs >> 1 & 7) * 4;
    options.max_response_line = 4 + (knobs >> 4 & 7) * 4;
    options.max_line = 8 + (knobs >> 2 & 15) * 8;
    options.max_pending_commands = 1 + (knobs >> 6 & 3);
  }
  return options;
}

std::vector<Event> Replay(const std::vector<std::pair<bool, std::string_view>>& chunks,
                          const SessionOptions& options, bool bytewise) {
  std::vector<Event> events;
  Session session([&events](const Event& event) { events.push_back(event); }, options);
  for (const auto& [from_server, bytes] : chunks) {
    const size_t step = bytewise ? 1 : bytes.size();
    for (size_t i = 0; i < bytes.size(); i += step) {
      const std::string_view piece = bytes.substr(i, step);
      if (from_server) {
        session.OnServerData(piece);
      } else {
        session.OnClientData(piece);
      }
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const SessionOptions options = OptionsFrom(data[0]);
  std::vector<std::pair<bool, std::string_view>> chunks;
  size_t pos = 1;
  while (pos < size) {
    const uint8_t header = data[pos++];
    const size_t length = std::min<size_t>((header >> 1) + 1, size - pos);
    chunks.emplace_back(header & 1,
                        std::string_view(reinterpret_cast<const char*>(data + pos), length));
    pos += length;
  }
  if (Replay(chunks, options, false) != Replay(chunks, options, true)) std::abort();
  return 0;
}

#include "agent/pop3/sasl.h"

#include <algorithm>
#include <cstdint>

namespace popguard::pop3 {
namespace {

// libcurl receives challenges as C strings.
std::string_view UpToNul(std::string_view text) { return text.substr(0, text.find('\0')); }

}  // namespace

int Base64Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t pad_here = last ? padding : 0;
    uint32_t quantum = 0;
    for (size_t j = 0; j < 4; ++j) {
      if (j >= 4 - pad_here) {
        quantum <<= 6;
        continue;
      }
      const int sextet = Base64Sextet(text[i + j]);
      if (sextet < 0) return std::nullopt;
      quantum = quantum << 6 | static_cast<uint32_t>(sextet);
    }
    out.push_back(static_cast<char>(quantum >> 16 & 0xff));
    if (pad_here < 2) out.push_back(static_cast<char>(quantum >> 8 & 0xff));
    if (pad_here < 1) out.push_back(static_cast<char>(quantum & 0xff));
  }
  return out;
}

std::string DecodeBase64LikeLibcurl728(std::string_view text) {
  text = UpToNul(text);
  const size_t length = std::min(text.find('='), text.size());
  size_t equals = 0;
  if (length < text.size()) {
    equals = 1;
    if (length + 1 < text.size() && text[length + 1] == '=') equals = 2;
  }
  const size_t quanta = (length + equals) / 4;
  std::string out;
  out.reserve(quanta * 3);
  for (size_t q = 0; q < quanta; ++q) {
    unsigned long x = 0;
    for (size_t i = 0; i < 4; ++i) {
      const char c = text[q * 4 + i];
      const int sextet = Base64Sextet(c);
      if (sextet >= 0) {
        x = (x << 6) + static_cast<unsigned long>(sextet);
      } else if (c == '=') {
        x <<= 6;
      }
    }
    const char bytes[3] = {static_cast<char>(x >> 16 & 0xff), static_cast<char>(x >> 8 & 0xff),
                           static_cast<char>(x & 0xff)};
    out.append(bytes, q + 1 < quanta ? 3 : 3 - equals);
  }
  return out;
}

std::optional<std::string> DigestMd5Realm(std::string_view decoded) {
  constexpr std::string_view kKey = "realm=\"";
  decoded = UpToNul(decoded);
  const size_t at = decoded.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view value = decoded.substr(at + kKey.size());
  value = value.substr(0, std::min(value.find('"'), kLibcurl728RealmMax));
  return std::string(value);
}

}  // namespace popguard::pop3

#include "agent/rules/text.h"

#include <charconv>
#include <cstdio>

namespace popguard::rules::internal {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<Piece> SplitTopLevel(std::string_view text, char separator) {
  std::vector<Piece> pieces;
  auto push = [&](size_t begin, size_t end) {
    std::string_view raw = text.substr(begin, end - begin);
    std::string_view trimmed = Trim(raw);
    size_t lead = trimmed.empty() ? 0 : static_cast<size_t>(trimmed.data() - raw.data());
    pieces.push_back({trimmed, begin + lead});
  };
  bool quoted = false;
  int brackets = 0;
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == '[') {
      ++brackets;
    } else if (!quoted && c == ']' && brackets > 0) {
      --brackets;
    } else if (!quoted && brackets == 0 && c == separator) {
      push(begin, i);
      begin = i + 1;
    }
  }
  push(begin, text.size());
  return pieces;
}

namespace {

std::optional<uint64_t> FromChars(std::string_view text, int base, uint64_t max) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

}  // namespace

std::optional<uint64_t> ParseUnsigned(std::string_view text, uint64_t max) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  return FromChars(text, 10, max);
}

std::optional<uint64_t> ParseUnsignedOrHex(std::string_view text, uint64_t max) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    std::string_view digits = text.substr(2);
    if (digits.front() == '+' || digits.front() == '-') return std::nullopt;
    return FromChars(digits, 16, max);
  }
  return ParseUnsigned(text, max);
}

std::optional<int64_t> ParseSigned(std::string_view text, int64_t min, int64_t max) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  uint64_t limit = negative ? static_cast<uint64_t>(-(min + 1)) + 1 : static_cast<uint64_t>(max);
  std::optional<uint64_t> magnitude = ParseUnsigned(text, limit);
  if (!magnitude) return std::nullopt;
  int64_t value = negative ? (*magnitude == 0 ? 0 : -static_cast<int64_t>(*magnitude - 1) - 1)
                           : static_cast<int64_t>(*magnitude);
  if (value < min || value > max) return std::nullopt;
  return value;
}

std::string Printable(std::string_view bytes, size_t limit) {
  std::string out;
  bool in_hex = false;
  for (size_t i = 0; i < bytes.size() && i < limit; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    bool plain = c >= 0x20 && c < 0x7f && c != '|' && c != '"' && c != ';';
    if (plain) {
      if (in_hex) out += '|';
      in_hex = false;
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%02X", c);
      out += in_hex ? " " : "|";
      out += hex;
      in_hex = true;
    }
  }
  if (in_hex) out += '|';
  if (bytes.size() > limit) out += "...";
  return out;
}

}  // namespace popguard::rules::internal

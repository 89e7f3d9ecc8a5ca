// Small text helpers shared by the rule parser's pieces. Internal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace popguard::rules::internal {

std::string ToLower(std::string_view text);
std::string_view Trim(std::string_view text);
bool IsSpace(char c);

// Splits on `separator` outside double quotes and [brackets]; a backslash
// escapes the next character. Pieces are trimmed and keep their offset into
// `text` (after trimming) so errors can point at them.
struct Piece {
  std::string_view text;
  size_t offset = 0;
};
std::vector<Piece> SplitTopLevel(std::string_view text, char separator);

// Decimal only, no sign, no spaces: what rule integers are.
std::optional<uint64_t> ParseUnsigned(std::string_view text, uint64_t max);
// Decimal or 0x-prefixed hexadecimal.
std::optional<uint64_t> ParseUnsignedOrHex(std::string_view text, uint64_t max);
std::optional<int64_t> ParseSigned(std::string_view text, int64_t min, int64_t max);

// A pattern as Suricata prints it: printable ASCII as is, other bytes as
// |XX|, cut after `limit` bytes. For error messages.
std::string Printable(std::string_view bytes, size_t limit = 40);

}  // namespace popguard::rules::internal

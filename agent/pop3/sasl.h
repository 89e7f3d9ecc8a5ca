// Base64 decoding for POP3 SASL exchanges (RFC 5034): a strict decoder for
// what rules inspect, and a replica of libcurl 7.26-7.28.1's lenient decoder,
// because CVE-2013-0249 depends on what that client makes of a challenge, not
// on what a well-formed challenge would say.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace popguard::pop3 {

// The value of an RFC 4648 base64 alphabet character, or -1.
int Base64Sextet(char c);

// RFC 4648 section 4 base64: the standard alphabet only, a length that is a
// multiple of four, "=" only as one or two trailing pad characters. Returns
// nullopt for anything else; the empty string decodes to the empty string.
std::optional<std::string> DecodeBase64(std::string_view text);

// libcurl 7.26-7.28.1 Curl_base64_decode() (lib/base64.c, "1998 - 2011"):
// the input is a C string, so a NUL ends it; decoding stops at the first "=",
// of which at most two more count as padding; the characters before it are
// taken four per quantum and a partial last quantum is dropped; a byte
// outside the alphabet takes its slot in the quantum but adds no bits (the
// quantum is then shifted less, so later bytes land lower); a "=" inside the
// last quantum adds six zero bits; the last quantum yields 3 minus the
// number of "=" bytes. Never fails.
std::string DecodeBase64LikeLibcurl728(std::string_view text);

// The longest realm libcurl 7.28.1 copies: sasl_digest_get_key_value() writes
// at most sizeof(realm) - 1 bytes into char realm[128].
inline constexpr size_t kLibcurl728RealmMax = 127;

// The realm libcurl 7.28.1 Curl_sasl_create_digest_md5_message()
// (lib/curl_sasl.c) takes from a decoded DIGEST-MD5 challenge: strstr() of
// the case-sensitive text `realm="` in the bytes before the first NUL (it
// may sit inside another value), then the bytes after it up to the next `"`
// or the end, at most kLibcurl728RealmMax of them. nullopt when `realm="`
// does not occur. libcurl then builds "pop/" + realm in char uri[128], so a
// realm of 124 bytes or more overflows it (CVE-2013-0249).
std::optional<std::string> DigestMd5Realm(std::string_view decoded);

}  // namespace popguard::pop3

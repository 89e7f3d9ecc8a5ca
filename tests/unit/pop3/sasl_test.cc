#include "agent/pop3/sasl.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/pop3/test_util.h"

namespace popguard::pop3 {
namespace {

using std::string_literals::operator""s;

TEST(DecodeBase64Test, DecodesStandardBase64) {
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64("YWJj"), "abc");
  EXPECT_EQ(DecodeBase64("YWI="), "ab");
  EXPECT_EQ(DecodeBase64("dGVzdA=="), "test");
  EXPECT_EQ(DecodeBase64("AGFsaWNlAHNlY3JldA=="), "\0alice\0secret"s);
  EXPECT_EQ(DecodeBase64("+/+/"), "\xfb\xff\xbf");
}

TEST(DecodeBase64Test, RejectsAnythingNotStrictlyBase64) {
  EXPECT_EQ(DecodeBase64("YWJ"), std::nullopt) << "length not a multiple of four";
  EXPECT_EQ(DecodeBase64("YW*j"), std::nullopt) << "byte outside the alphabet";
  EXPECT_EQ(DecodeBase64("YWJj "), std::nullopt) << "trailing blank";
  EXPECT_EQ(DecodeBase64("YQ==YWJj"), std::nullopt) << "padding before the end";
  EXPECT_EQ(DecodeBase64("Y==="), std::nullopt) << "three pad characters";
  EXPECT_EQ(DecodeBase64("===="), std::nullopt);
  EXPECT_EQ(DecodeBase64("YW-_"), std::nullopt) << "base64url is not base64";
}

TEST(DecodeBase64LikeLibcurl728Test, AgreesWithStrictDecoderOnWellFormedInput) {
  for (const std::string& plain : {""s, "a"s, "ab"s, "abc"s, "realm=\"x\",nonce=\"y\""s}) {
    EXPECT_EQ(DecodeBase64LikeLibcurl728(test::EncodeBase64(plain)), plain) << plain;
  }
}

TEST(DecodeBase64LikeLibcurl728Test, NonAlphabetByteTakesASlotButAddsNoBits) {
  // "YW*J" is one quantum of Y(24) W(22) J(9): 18 bits, (24 << 12) | (22 << 6) | 9.
  EXPECT_EQ(DecodeBase64LikeLibcurl728("YW*J"), "\x01\x85\x89"s);
  // The fifth character "j" is a partial quantum and is dropped.
  EXPECT_EQ(DecodeBase64LikeLibcurl728("YW*Jj"), "\x01\x85\x89"s);
  // A CR at the end of libcurl's line buffer completes a quantum the same way.
  EXPECT_EQ(DecodeBase64LikeLibcurl728("YWJjZGV\r"), "abc\x01\x91\x95"s);
}

TEST(DecodeBase64LikeLibcurl728Test, StopsAtTheFirstEquals) {
  EXPECT_EQ(DecodeBase64LikeLibcurl728("YQ==YWJj"), "a");
  EXPECT_EQ(DecodeBase64LikeLibcurl728("YWI=ZGVm"), "ab");
  // Two "=" after five characters: (5 + 2) / 4 = one quantum, 3 - 2 = one byte.
  EXPECT_EQ(DecodeBase64LikeLibcurl728("YWJjZ=="), "a");
  EXPECT_EQ(DecodeBase64LikeLibcurl728("=YWJj"), "");
}

TEST(DecodeBase64LikeLibcurl728Test, StopsAtNul) {
  EXPECT_EQ(DecodeBase64LikeLibcurl728("YWJj\0ZGVm"s), "abc");
}

TEST(DigestMd5RealmTest, TakesTheFirstQuotedRealm) {
  EXPECT_EQ(DigestMd5Realm("realm=\"mail.example.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\""),
            "mail.example.com");
  EXPECT_EQ(DigestMd5Realm("realm=\"first\",realm=\"second\""), "first");
  EXPECT_EQ(DigestMd5Realm("nonce=\"abc\",algorithm=md5-sess"), std::nullopt);
  EXPECT_EQ(DigestMd5Realm("REALM=\"upper\""), std::nullopt) << "strstr is case-sensitive";
  EXPECT_EQ(DigestMd5Realm("realm=\"\""), "");
}

TEST(DigestMd5RealmTest, MatchesInsideOtherValuesLikeStrstr) {
  EXPECT_EQ(DigestMd5Realm("nonce=\"xrealm=\"inner\",qop=\"auth\""), "inner");
}

TEST(DigestMd5RealmTest, RunsToTheEndWithoutAClosingQuote) {
  EXPECT_EQ(DigestMd5Realm("nonce=\"n\",realm=\"open,qop=auth"), "open,qop=auth");
}

TEST(DigestMd5RealmTest, IgnoresEverythingAfterANul) {
  EXPECT_EQ(DigestMd5Realm("nonce=\"n\"\0realm=\"hidden\""s), std::nullopt);
  EXPECT_EQ(DigestMd5Realm("realm=\"ab\0cd\""s), "ab");
}

TEST(DigestMd5RealmTest, CopiesAtMost127BytesLikeRealm128) {
  EXPECT_EQ(DigestMd5Realm("realm=\"" + std::string(200, 'r') + "\""), std::string(127, 'r'));
}

TEST(DigestMd5RealmTest, RealmOf123And124BytesThroughTheLibcurlDecoder) {
  for (size_t length : {123u, 124u}) {
    const std::string challenge = "realm=\"" + std::string(length, 'A') +
                                  "\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",algorithm=md5-sess";
    const std::optional<std::string> realm =
        DigestMd5Realm(DecodeBase64LikeLibcurl728(test::EncodeBase64(challenge)));
    ASSERT_TRUE(realm.has_value());
    EXPECT_EQ(realm->size(), length);
  }
}

}  // namespace
}  // namespace popguard::pop3

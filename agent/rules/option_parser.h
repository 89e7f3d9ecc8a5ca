// The rule body: options applied in order onto a Rule, then the checks that
// span options. Internal to the rule parser.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/rules/ast.h"
#include "agent/rules/classifications.h"
#include "agent/rules/lexer.h"

namespace popguard::rules::internal {

class OptionParser {
 public:
  OptionParser(Rule* rule, const Classifications& classifications)
      : rule_(rule), classifications_(classifications) {}

  // One option, in rule order. On failure `error` says why and where.
  bool Apply(const RawOption& option, SyntaxError* error);

  // After the last option: what only the whole rule can tell (missing sid,
  // relative matches with nothing to be relative to, impossible positions,
  // buffers against flow direction). `rule_offset` is where the rule starts.
  bool Finish(size_t rule_offset, SyntaxError* error);

 private:
  using Handler = bool (OptionParser::*)(const RawOption&);
  struct Keyword {
    std::string_view name;
    Handler handler;
  };
  static const Keyword kKeywords[];

  bool Fail(size_t offset, std::string message);
  bool RequireValue(const RawOption& option);
  bool RequireNoValue(const RawOption& option);
  bool Once(const RawOption& option);
  bool Refuse(const RawOption& option);

  // Metadata.
  bool OnMsg(const RawOption& option);
  bool OnSid(const RawOption& option);
  bool OnGid(const RawOption& option);
  bool OnRev(const RawOption& option);
  bool OnClasstype(const RawOption& option);
  bool OnPriority(const RawOption& option);
  bool OnReference(const RawOption& option);
  bool OnMetadata(const RawOption& option);
  bool OnTarget(const RawOption& option);
  bool OnService(const RawOption& option);

  // Payload.
  bool OnContent(const RawOption& option);
  bool OnContentModifier(const RawOption& option);
  bool ApplyContentModifier(ContentMatch& content, std::string_view name,
                            std::optional<std::string_view> value, size_t offset);
  bool OnPcre(const RawOption& option);
  bool OnIsDataAt(const RawOption& option);
  bool OnByteTest(const RawOption& option);
  bool OnBase64Decode(const RawOption& option);
  bool OnBase64Data(const RawOption& option);
  bool OnBsize(const RawOption& option);
  bool OnStickyBuffer(const RawOption& option);
  bool SwitchBuffer(const RawOption& option, Buffer buffer);
  bool CheckStickyUsed();
  bool OnPktData(const RawOption& option);

  // Non-payload.
  bool OnDsize(const RawOption& option);
  bool OnFlow(const RawOption& option);
  bool OnFlags(const RawOption& option);
  bool OnFlowbits(const RawOption& option);
  bool OnNoalert(const RawOption& option);
  bool OnThreshold(const RawOption& option);
  bool OnDetectionFilter(const RawOption& option);
  bool OnAppLayerEvent(const RawOption& option);

  // Helpers.
  bool ParseQuoted(std::string_view value, size_t offset, bool allow_negation, bool* negated,
                   std::string_view* inner, std::string_view* rest, size_t* rest_offset);
  bool DecodeContent(std::string_view raw, size_t offset, std::string* pattern);
  bool ParseIntegerTest(std::string_view text, size_t offset, uint64_t max, std::string_view what,
                        IntegerTest* test);
  // `position`: where Snort and Suricata also take a byte_extract variable,
  // so a name there gets a precise refusal.
  bool ParseNumber(std::string_view text, size_t offset, std::string_view what, int64_t min,
                   int64_t max, int64_t* value, bool position = false);
  void AddDetection(Detection detection, size_t offset);

  bool CheckContent(const ContentMatch& content, size_t offset);
  bool CheckRelativeAnchors();
  bool CheckDirections();

  Rule* rule_;
  const Classifications& classifications_;
  SyntaxError* error_ = nullptr;

  std::set<std::string, std::less<>> seen_;  // options allowed once per rule
  bool explicit_priority_ = false;
  Buffer buffer_ = Buffer::kPayload;
  // The last sticky buffer switch, until a payload keyword uses it.
  struct PendingSticky {
    std::string keyword;
    size_t offset;
  };
  std::optional<PendingSticky> unused_sticky_;
  std::optional<size_t> unread_base64_decode_;  // offset of a decode no base64_data reads
  std::vector<size_t> detection_offsets_;       // parallel to rule_->detections
  std::vector<size_t> event_offsets_;           // parallel to rule_->app_layer_events
  std::optional<size_t> dsize_offset_;
};

}  // namespace popguard::rules::internal

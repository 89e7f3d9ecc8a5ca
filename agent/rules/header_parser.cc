#include "agent/rules/header_parser.h"

#include <optional>
#include <string>
#include <vector>

#include "agent/rules/text.h"

namespace popguard::rules::internal {
namespace {

// Variables may refer to variables; this bounds a chain and stops cycles.
constexpr int kMaxVariableDepth = 16;
// And this bounds the breadth: `A=[$B,$B]`, `B=[$C,$C]`, ... doubles per level.
constexpr int kMaxElements = 4096;

bool ParseNetwork(std::string_view text, IpNetwork* network, std::string* why) {
  size_t slash = text.find('/');
  std::optional<IpAddress> address = ParseIpAddress(text.substr(0, slash));
  if (!address) {
    *why = "'" + std::string(text) + "' is not 'any', an IP address, a CIDR network or a $variable";
    return false;
  }
  int max_prefix = address->v6 ? 128 : 32;
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    std::optional<uint64_t> parsed = ParseUnsigned(text.substr(slash + 1), max_prefix);
    if (!parsed) {
      *why = "'" + std::string(text) + "': prefix length must be 0.." + std::to_string(max_prefix);
      return false;
    }
    prefix = static_cast<int>(*parsed);
  }
  network->base = *address;
  network->prefix_length = prefix;
  for (int bit = prefix; bit < max_prefix; ++bit) {
    network->base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return true;
}

bool ParsePortRange(std::string_view text, PortRange* range, std::string* why) {
  auto port = [](std::string_view digits) { return ParseUnsigned(digits, 65535); };
  size_t colon = text.find(':');
  std::optional<uint64_t> low = 0;
  std::optional<uint64_t> high = 65535;
  if (colon == std::string_view::npos) {
    low = high = port(text);
  } else {
    if (colon > 0) low = port(text.substr(0, colon));
    if (colon + 1 < text.size()) high = port(text.substr(colon + 1));
    if (text.size() == 1) low.reset();
  }
  if (!low || !high) {
    *why = "'" + std::string(text) +
           "' is not 'any', a port 0..65535, a range 'lo:hi', ':hi', 'lo:' or a $variable";
    return false;
  }
  if (*low > *high) {
    *why = "port range '" + std::string(text) + "' is empty (low end above high end)";
    return false;
  }
  range->low = static_cast<uint16_t>(*low);
  range->high = static_cast<uint16_t>(*high);
  return true;
}

bool IsVariableName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Recursive descent over one address or port field; errors are plain text,
// the caller adds the field name and position.
template <typename Leaf>
class SelectorParser {
 public:
  using LeafParser = bool (*)(std::string_view, Leaf*, std::string*);

  SelectorParser(const Variables& variables, bool ports, LeafParser parse_leaf)
      : variables_(variables), ports_(ports), parse_leaf_(parse_leaf) {}

  // A top-level comma list (`110,995`) is a list, as in variable values.
  bool ParseField(std::string_view text, int depth, Selector<Leaf>* out, std::string* why) {
    std::vector<Piece> pieces = SplitTopLevel(text, ',');
    if (pieces.size() == 1) return ParseElement(pieces.front().text, depth, out, why);
    return ParseList(pieces, depth, out, why);
  }

 private:
  bool ParseList(const std::vector<Piece>& pieces, int depth, Selector<Leaf>* out,
                 std::string* why) {
    out->kind = Selector<Leaf>::Kind::kList;
    for (const Piece& piece : pieces) {
      Selector<Leaf> element;
      if (!ParseElement(piece.text, depth, &element, why)) return false;
      out->elements.push_back(std::move(element));
    }
    return true;
  }

  bool ParseElement(std::string_view text, int depth, Selector<Leaf>* out, std::string* why) {
    if (++elements_ > kMaxElements) {
      *why = "expands to more than " + std::to_string(kMaxElements) + " elements";
      return false;
    }
    text = Trim(text);
    if (text.empty()) {
      *why = "empty element";
      return false;
    }
    if (text.front() == '!') {
      if (!ParseElement(text.substr(1), depth, out, why)) return false;
      if (out->kind == Selector<Leaf>::Kind::kAny && !out->negated) {
        *why = "'" + std::string(text) + "' matches nothing";
        return false;
      }
      out->negated = !out->negated;
      return true;
    }
    if (text.front() == '[') {
      if (text.back() != ']') {
        *why = "'" + std::string(text) + "' has no closing ']'";
        return false;
      }
      std::string_view inner = text.substr(1, text.size() - 2);
      if (Trim(inner).empty()) {
        *why = "empty list '[]'";
        return false;
      }
      return ParseList(SplitTopLevel(inner, ','), depth, out, why);
    }
    if (text.front() == '$') return ParseVariable(text.substr(1), depth, out, why);
    if (text == "any") {
      out->kind = Selector<Leaf>::Kind::kAny;
      return true;
    }
    out->kind = Selector<Leaf>::Kind::kLeaf;
    return parse_leaf_(text, &out->leaf, why);
  }

  bool ParseVariable(std::string_view name, int depth, Selector<Leaf>* out, std::string* why) {
    const char* kind = ports_ ? "port" : "address";
    if (!IsVariableName(name)) {
      *why = "'$" + std::string(name) + "' is not a variable name";
      return false;
    }
    const std::string* value = ports_ ? variables_.FindPorts(name) : variables_.FindAddress(name);
    if (value == nullptr) {
      *why = "undefined " + std::string(kind) + " variable $" + std::string(name);
      return false;
    }
    if (depth >= kMaxVariableDepth) {
      *why = "variable $" + std::string(name) + " nests too deep (does it refer to itself?)";
      return false;
    }
    std::string inner_why;
    if (!ParseField(*value, depth + 1, out, &inner_why)) {
      *why = "$" + std::string(name) + " = \"" + *value + "\": " + inner_why;
      return false;
    }
    return true;
  }

  const Variables& variables_;
  bool ports_;
  LeafParser parse_leaf_;
  int elements_ = 0;
};

// Whitespace separates header fields, except inside [lists]. Sets
// `unclosed` to the outermost '[' that has no ']', npos if none.
std::vector<Piece> SplitHeaderFields(std::string_view text, size_t* unclosed) {
  std::vector<Piece> fields;
  int brackets = 0;
  size_t begin = std::string_view::npos;
  for (size_t i = 0; i <= text.size(); ++i) {
    bool end = i == text.size();
    char c = end ? ' ' : text[i];
    if (c == '[' && brackets++ == 0) *unclosed = i;
    if (c == ']' && brackets > 0 && --brackets == 0) *unclosed = std::string_view::npos;
    if (IsSpace(c) && brackets == 0) {
      if (begin != std::string_view::npos) fields.push_back({text.substr(begin, i - begin), begin});
      begin = std::string_view::npos;
    } else if (begin == std::string_view::npos) {
      begin = i;
    }
  }
  if (begin != std::string_view::npos) fields.push_back({text.substr(begin), begin});
  return fields;
}

bool ParseAction(std::string_view text, Action* action) {
  static constexpr std::pair<std::string_view, Action> kActions[] = {
      {"alert", Action::kAlert}, {"drop", Action::kDrop}, {"reject", Action::kReject},
      {"pass", Action::kPass},   {"log", Action::kLog},
  };
  for (const auto& [name, value] : kActions) {
    if (text == name) {
      *action = value;
      return true;
    }
  }
  return false;
}

// What can carry POP3: TCP, or the POP3 app-layer itself.
bool IsPop3Protocol(std::string_view protocol) {
  static constexpr std::string_view kProtocols[] = {"tcp", "pop3",    "ip",
                                                    "any", "tcp-pkt", "tcp-stream"};
  for (std::string_view p : kProtocols) {
    if (protocol == p) return true;
  }
  return false;
}

}  // namespace

bool ParseHeader(std::string_view text, size_t offset, const Variables& variables, Header* header,
                 SyntaxError* error) {
  size_t unclosed = std::string_view::npos;
  std::vector<Piece> fields = SplitHeaderFields(text, &unclosed);
  auto fail = [&](const Piece& at, std::string message) {
    *error = {offset + at.offset, std::move(message)};
    return false;
  };
  if (unclosed != std::string_view::npos) {
    *error = {offset + unclosed, "'[' without a closing ']' in the header"};
    return false;
  }
  if (fields.empty()) {
    *error = {offset, "missing rule header before '('"};
    return false;
  }
  if (!ParseAction(fields[0].text, &header->action)) {
    return fail(fields[0], "unknown action '" + std::string(fields[0].text) +
                               "' (expected alert, drop, reject, pass or log)");
  }
  if (fields.size() == 1) {
    return fail(fields[0],
                "rule has no protocol: Snort 3 builtin rule stubs (`alert ( gid:142; sid:1; )`) "
                "are not supported; use app-layer-event:pop3.<event>");
  }
  header->protocol = ToLower(fields[1].text);
  if (!IsPop3Protocol(header->protocol)) {
    return fail(fields[1], "protocol '" + std::string(fields[1].text) +
                               "' cannot carry POP3 (expected tcp, pop3, ip, any, tcp-pkt or "
                               "tcp-stream)");
  }
  if (fields.size() == 2) {
    header->form = HeaderForm::kProtocolOnly;
    header->bidirectional = true;
    return true;
  }
  if (fields.size() != 7) {
    return fail(fields[0],
                "malformed header: expected 'action protocol source port direction "
                "destination port', got " +
                    std::to_string(fields.size()) + " fields");
  }
  if (fields[4].text != "->" && fields[4].text != "<>") {
    return fail(fields[4],
                "direction '" + std::string(fields[4].text) + "' (expected '->' or '<>')");
  }
  header->bidirectional = fields[4].text == "<>";

  std::string why;
  auto address = [&](const Piece& field, AddressSelector* out, std::string_view name) {
    return SelectorParser<IpNetwork>(variables, false, ParseNetwork)
               .ParseField(field.text, 0, out, &why) ||
           fail(field, std::string(name) + ": " + why);
  };
  auto port = [&](const Piece& field, PortSelector* out, std::string_view name) {
    return SelectorParser<PortRange>(variables, true, ParsePortRange)
               .ParseField(field.text, 0, out, &why) ||
           fail(field, std::string(name) + ": " + why);
  };
  return address(fields[2], &header->source, "source address") &&
         port(fields[3], &header->source_ports, "source port") &&
         address(fields[5], &header->destination, "destination address") &&
         port(fields[6], &header->destination_ports, "destination port");
}

}  // namespace popguard::rules::internal

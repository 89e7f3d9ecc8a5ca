// The classtype table: a classtype names a category (EVE alert.category) and
// a default priority (EVE alert.severity). Unknown classtypes are errors.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace popguard::rules {

struct Classification {
  std::string name;
  std::string description;
  int priority = 3;
};

class Classifications {
 public:
  // Suricata's etc/classification.config, as shipped.
  static const Classifications& Builtin();

  // Adds or replaces one entry, as a `config classification:` line would.
  void Add(std::string_view name, std::string description, int priority);

  // Case-insensitive, like Suricata.
  const Classification* Find(std::string_view name) const;

 private:
  std::map<std::string, Classification, std::less<>> by_name_;  // lower-case keys
};

}  // namespace popguard::rules

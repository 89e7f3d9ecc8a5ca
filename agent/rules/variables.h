// Address and port variables (`$HOME_NET`, `$POP3_PORTS`) that rule headers
// refer to. Two namespaces, as in suricata.yaml's address-groups and
// port-groups: `$HOME_NET` in a port position is an undefined port variable.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace popguard::rules {

class Variables {
 public:
  // HOME_NET any, EXTERNAL_NET any, POP3_PORTS 110,995.
  Variables();

  // `name` may carry the leading `$`. `value` is written as in a header and
  // may refer to other variables (`!$HOME_NET`); it is parsed where used.
  void SetAddress(std::string_view name, std::string value);
  void SetPorts(std::string_view name, std::string value);

  const std::string* FindAddress(std::string_view name) const;
  const std::string* FindPorts(std::string_view name) const;

 private:
  std::map<std::string, std::string, std::less<>> addresses_;
  std::map<std::string, std::string, std::less<>> ports_;
};

}  // namespace popguard::rules

#include "agent/rules/variables.h"

#include <utility>

namespace popguard::rules {
namespace {

std::string_view StripDollar(std::string_view name) {
  if (!name.empty() && name.front() == '$') name.remove_prefix(1);
  return name;
}

const std::string* Find(const std::map<std::string, std::string, std::less<>>& map,
                        std::string_view name) {
  auto it = map.find(StripDollar(name));
  return it == map.end() ? nullptr : &it->second;
}

}  // namespace

Variables::Variables() {
  SetAddress("HOME_NET", "any");
  SetAddress("EXTERNAL_NET", "any");
  SetPorts("POP3_PORTS", "110,995");
}

void Variables::SetAddress(std::string_view name, std::string value) {
  addresses_.insert_or_assign(std::string(StripDollar(name)), std::move(value));
}

void Variables::SetPorts(std::string_view name, std::string value) {
  ports_.insert_or_assign(std::string(StripDollar(name)), std::move(value));
}

const std::string* Variables::FindAddress(std::string_view name) const {
  return Find(addresses_, name);
}

const std::string* Variables::FindPorts(std::string_view name) const { return Find(ports_, name); }

}  // namespace popguard::rules

#include "agent/detect/load.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace popguard::detect {

LoadedRules LoadRules(const std::vector<std::string>& paths, const rules::Variables& variables) {
  LoadedRules loaded;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::string> files;
      for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
        if (entry.path().extension() == ".rules") files.push_back(entry.path().string());
      }
      if (ec) {
        loaded.errors.push_back({{path, 0, 0}, "cannot list the directory: " + ec.message()});
        continue;
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) loaded.errors.push_back({{path, 0, 0}, "no *.rules files in directory"});
      loaded.files.insert(loaded.files.end(), files.begin(), files.end());
    } else {
      loaded.files.push_back(path);
    }
  }
  rules::RuleSet set;
  for (const std::string& file : loaded.files) set.Add(rules::ParseRuleFile(file, variables));
  loaded.errors.insert(loaded.errors.end(), set.errors().begin(), set.errors().end());
  loaded.disabled_rules = set.disabled_rules();
  CompileResult compiled = Compile(set.rules());
  loaded.errors.insert(loaded.errors.end(), compiled.errors.begin(), compiled.errors.end());
  loaded.warnings = std::move(compiled.warnings);
  loaded.engine = std::move(compiled.engine);
  // Report in file order, whichever stage found the problem.
  std::stable_sort(loaded.errors.begin(), loaded.errors.end(),
                   [&](const rules::Diagnostic& a, const rules::Diagnostic& b) {
                     auto rank = [&](const std::string& file) {
                       return std::find(loaded.files.begin(), loaded.files.end(), file) -
                              loaded.files.begin();
                     };
                     return std::pair(rank(a.location.file), a.location.line) <
                            std::pair(rank(b.location.file), b.location.line);
                   });
  return loaded;
}

}  // namespace popguard::detect

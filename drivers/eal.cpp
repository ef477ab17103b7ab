// SPDX-License-Identifier: BSD-3-Clause
#include "drivers/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>

#include <sstream>

namespace keel::drivers {

Result<void, std::string> eal_init(const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;  // rte_eal_init may permute argv
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(int(copy.size()), argv.data()) < 0) {
    bool secondary = false;
    for (size_t i = 0; i < args.size(); ++i)
      secondary = secondary || args[i] == "--proc-type=secondary" ||
                  (args[i] == "--proc-type" && i + 1 < args.size() && args[i + 1] == "secondary");
    return Unexpected<std::string>{
        std::string("EAL initialisation failed: ") + (rte_errno != 0 ? rte_strerror(rte_errno) : "no reason given") +
        (secondary ? " (a secondary needs its primary running, with the same --file-prefix)" : "")};
  }
  return {};
}

void eal_cleanup() { rte_eal_cleanup(); }

std::vector<std::string> split_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace keel::drivers

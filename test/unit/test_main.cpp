// SPDX-License-Identifier: BSD-3-Clause
// Catch2 runner that brings up one EAL for the whole test process.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <rte_eal.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  // No hugepages, no PCI, no shared config: test binaries can run side by side.
  std::vector<std::string> eal_args = {"unit_tests", "--no-huge", "-m", "256", "--no-pci",
                                       "--no-shconf", "--log-level=lib.eal:error",
                                       "--log-level=pmd:error", "-l", "0"};
  std::vector<char*> eal_argv;
  for (auto& a : eal_args) eal_argv.push_back(a.data());
  if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "unit_tests: rte_eal_init failed\n");
    return 2;
  }
  int rc = Catch::Session().run(argc, argv);
  rte_eal_cleanup();
  return rc;
}

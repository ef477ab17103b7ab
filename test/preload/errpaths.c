// SPDX-License-Identifier: BSD-3-Clause
// preload-errpaths: the error paths of every call libkeel_preload.so intercepts, with
// the errno Linux gives (docs/ARCHITECTURE.md "The LD_PRELOAD shim" says where keel
// differs on purpose; those checks assert the documented behaviour). A plain C program:
// run under LD_PRELOAD it talks to keel, run without it to the kernel (`kernel` mode),
// which shows the expectations are Linux's. The peer is errpaths_peer.py.
//
//   errpaths PEER_IP BASE_PORT SELF_IP [kernel] [CASE...]
// Prints `ok NAME` or `FAIL NAME: expected X got Y (errno text)` per check; exits 0
// only if every check passed. CASE picks cases by name; the default ("all") is every case
// but "prefork" (it needs a process whose stack has not started) and "noanswer" (it
// waits for a connect to give up: run it where that is bounded, see errpaths.sh).
// errpaths_{calls,conn,wait}.c hold the cases, errpaths_lib.c the checks and helpers.
#include "errpaths.h"

struct kase {
  const char* name;
  void (*fn)(void);
  bool alone;  // not in the default set
};
static const struct kase cases[] = {
    {"prefork", c_prefork, true},
    {"badfd", c_badfd, false},
    {"notsock", c_notsock, false},
    {"state", c_state, false},
    {"nbconnect", c_nbconnect, false},
    {"timeo", c_timeo, false},
    {"rdhup", c_rdhup, false},
    {"oneshot_et", c_oneshot_et, false},
    {"sendbuf", c_sendbuf, false},
    {"reset", c_reset, false},
    {"mixed", c_mixed, false},
    {"dup", c_dup, false},
    {"flags", c_flags, false},
    {"udp", c_udp, false},
    {"sendfile", c_sendfile, false},
    {"fork", c_fork, false},
    {"misc", c_misc, false},
    {"misc2", c_misc2, false},
    {"threads", c_threads, false},
    {"listen", c_listen, false},
    {"signals", c_signals, false},
    {"noanswer", c_noanswer, true},
};

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: errpaths PEER_IP BASE_PORT SELF_IP [kernel] [CASE...]\n");
    return 2;
  }
  peer_ip = argv[1], base_port = atoi(argv[2]), self_ip = argv[3];
  int first = 4;
  if (argc > 4 && strcmp(argv[4], "kernel") == 0) kernel_mode = true, ++first;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa = {.sa_handler = on_sigpipe};
  sigaction(SIGPIPE, &sa, NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    bool want = first == argc && !cases[i].alone;
    for (int k = first; k < argc; ++k)
      want |= strcmp(argv[k], cases[i].name) == 0 || (strcmp(argv[k], "all") == 0 && !cases[i].alone);
    if (!want) continue;
    printf("# case %s\n", cases[i].name);
    cases[i].fn();
  }
  printf("# %d failed (%d SIGPIPE caught)\n", failures, (int)sigpipes);
  return failures == 0 ? 0 : 1;
}

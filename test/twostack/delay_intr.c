// SPDX-License-Identifier: BSD-3-Clause
// LD_PRELOAD shim for quit-loop.sh (not built by meson): EAL's interrupt thread sleeps
// before each rebuild of its epoll set (its epoll_create), as it does when its core is
// busy with another process's poll loop. That thread then reads every interrupt
// source's handle; DPDK 22.11's rte_eal_cleanup unmaps DPDK's memory meanwhile, and
// net_memif's listener leaves its source (with its handle in that memory) behind: a
// memif server then crashed at exit (see drivers/eal.cpp).
//   cc -O2 -shared -fPIC -o delay_intr.so test/twostack/delay_intr.c
//   export LD_PRELOAD=$PWD/delay_intr.so DELAY_INTR_US=12000 DELAY_INTR_RANDOM=1
//   test/twostack/quit-loop.sh build/tools/keel-pmd/keel-pmd both
// DELAY_INTR_US: the sleep (default 20000); DELAY_INTR_RANDOM=1: 0..DELAY_INTR_US each time.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int epoll_create(int size) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "epoll_create");
  char name[32] = "";
  pthread_getname_np(pthread_self(), name, sizeof name);
  if (strcmp(name, "eal-intr-thread") == 0) {
    const char* d = getenv("DELAY_INTR_US");
    useconds_t us = d ? (useconds_t)atoi(d) : 20000;
    static unsigned seed;
    if (seed == 0) seed = (unsigned)getpid();
    if (getenv("DELAY_INTR_RANDOM") && us > 0) us = (useconds_t)(rand_r(&seed) % us);
    usleep(us);
  }
  return real(size);
}

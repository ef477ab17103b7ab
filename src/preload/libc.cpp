// SPDX-License-Identifier: BSD-3-Clause
#include "preload/libc.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace keel::preload {

namespace {

template <class F>
void resolve(F& slot, const char* name) {
  slot = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  if (slot == nullptr) {
    // stdio may not be usable this early; write(2) is.
    const char* a = "keel-preload: the C library has no ";
    (void)::write(2, a, strlen(a));
    (void)::write(2, name, strlen(name));
    (void)::write(2, "\n", 1);
    abort();
  }
}

Libc load() {
  Libc c{};
#define KEEL_RESOLVE(n) resolve(c.n, #n)
  KEEL_RESOLVE(socket); KEEL_RESOLVE(bind); KEEL_RESOLVE(listen); KEEL_RESOLVE(accept);
  KEEL_RESOLVE(accept4); KEEL_RESOLVE(connect); KEEL_RESOLVE(read); KEEL_RESOLVE(write);
  KEEL_RESOLVE(readv); KEEL_RESOLVE(writev); KEEL_RESOLVE(recv); KEEL_RESOLVE(send);
  KEEL_RESOLVE(recvfrom); KEEL_RESOLVE(sendto); KEEL_RESOLVE(recvmsg); KEEL_RESOLVE(sendmsg);
  KEEL_RESOLVE(close); KEEL_RESOLVE(shutdown); KEEL_RESOLVE(fcntl); KEEL_RESOLVE(ioctl);
  KEEL_RESOLVE(setsockopt); KEEL_RESOLVE(getsockopt); KEEL_RESOLVE(getsockname);
  KEEL_RESOLVE(getpeername); KEEL_RESOLVE(sendfile); KEEL_RESOLVE(poll); KEEL_RESOLVE(ppoll);
  KEEL_RESOLVE(select); KEEL_RESOLVE(pselect); KEEL_RESOLVE(epoll_create);
  KEEL_RESOLVE(epoll_create1); KEEL_RESOLVE(epoll_ctl); KEEL_RESOLVE(epoll_wait);
  KEEL_RESOLVE(epoll_pwait); KEEL_RESOLVE(epoll_pwait2); KEEL_RESOLVE(dup); KEEL_RESOLVE(dup2);
  KEEL_RESOLVE(dup3); KEEL_RESOLVE(sigaction); KEEL_RESOLVE(signal);
#undef KEEL_RESOLVE
  return c;
}

}  // namespace

const Libc& libc() {
  static const Libc c = load();  // thread-safe static init
  return c;
}

}  // namespace keel::preload

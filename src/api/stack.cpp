// SPDX-License-Identifier: BSD-3-Clause
// keel::Stack: the application's handle on its instance (forwards to StackCore).
#include <keel/stack.hpp>

#include "api/stack_core.hpp"

namespace keel {

unsigned Stack::id() const { return core_->instance().id(); }
unsigned Stack::instances() const { return core_->instances(); }
bool Stack::running() const { return core_->running(); }
void Stack::request_stop() { core_->request_stop(); }
std::span<const Event> Stack::poll() { return core_->poll(true); }
std::span<const Event> Stack::poll_nowait() { return core_->poll(false); }

Result<Listener> Stack::listen(Endpoint local, const ListenOptions& opt) {
  return core_->listen(local, opt);
}

Result<Connection> Stack::connect(Endpoint remote, const ConnectOptions& opt) {
  return core_->connect(remote, opt);
}

Result<Buffer> Stack::alloc(size_t len) { return core_->alloc(len); }

Result<Buffer> Stack::clone(const Buffer& b) { return core_->clone(b); }

Result<UdpSocket> Stack::udp_bind(Endpoint local) { return core_->udp_bind(local); }

uint64_t Stack::now_ns() const { return engine::now_ns(); }

uint64_t Stack::counter(std::string_view name) const {
  for (size_t i = 0; i < size_t(engine::Counter::count_); ++i)
    if (engine::counter_name(engine::Counter(i)) == name)
      return core_->instance().counters().get(engine::Counter(i));
  return 0;
}

}  // namespace keel

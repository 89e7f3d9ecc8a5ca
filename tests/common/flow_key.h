// Flow keys as the kernel builds them, for tests and benchmarks.
#pragma once

#include <arpa/inet.h>

#include "bpf/popguard.h"

namespace popguard::test {

// The key of an IPv4 connection, oriented client -> server.
inline pg_flow_key KeyV4(const char* client, uint16_t cport, const char* server, uint16_t sport) {
  pg_flow_key k{};
  inet_pton(AF_INET, client, &k.client_addr[0]);
  inet_pton(AF_INET, server, &k.server_addr[0]);
  k.client_port = htons(cport);
  k.server_port = htons(sport);
  k.family = 4;
  return k;
}

}  // namespace popguard::test

// The programs attached for real: a veth pair into a network namespace,
// XDP on the server side's ingress and TC on its egress, and a TCP
// conversation large enough that the kernel hands TC GSO skbs far past
// the ~3.7 KB a TC test run accepts.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "agent/prefilter/prefilter.h"

namespace popguard::test {
namespace {

// Names carry the pid so parallel runs never collide; tests/cleanup.sh
// removes anything left under the pgt prefix.
struct Lab {
  std::string ns = "pgt-live-" + std::to_string(getpid());
  std::string host_if = "pgt" + std::to_string(getpid()) + "a";
  std::string ns_if = "pgt" + std::to_string(getpid()) + "b";
  const char* host_ip = "10.201.0.1";
  const char* ns_ip = "10.201.0.2";

  static void Sh(const std::string& cmd) {
    ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
  }
  void Up() {
    Sh("ip netns add " + ns);
    Sh("ip link add " + host_if + " type veth peer name " + ns_if + " netns " + ns);
    Sh("ip addr add " + std::string(host_ip) + "/24 dev " + host_if);
    Sh("ip link set " + host_if + " up");
    Sh("nsenter --net=/run/netns/" + ns + " ip addr add " + ns_ip + "/24 dev " + ns_if);
    Sh("nsenter --net=/run/netns/" + ns + " ip link set " + ns_if + " up");
    Sh("nsenter --net=/run/netns/" + ns + " ip link set lo up");
    // GSO/TSO on, so the server side's egress carries multi-segment skbs.
    Sh("ethtool -K " + host_if + " tso on gso on");
  }
  void Down() const {
    std::system(("ip netns del " + ns + " >/dev/null 2>&1").c_str());
    std::system(("ip link del " + host_if + " >/dev/null 2>&1").c_str());
  }
};

std::string ReadUntil(int fd, const std::string& end) {
  std::string got;
  char buf[65536];
  while (got.size() < end.size() || got.compare(got.size() - end.size(), end.size(), end) != 0) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, n);
  }
  return got;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += n;
  }
}

class LiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "attaching programs needs root";
    if (std::system("command -v ethtool >/dev/null && command -v nsenter >/dev/null") != 0)
      GTEST_SKIP() << "needs ethtool and nsenter (deploy/install-deps.sh)";
    lab_.Down();
    lab_.Up();
    if (HasFatalFailure()) return;
    pf_ = std::make_unique<Prefilter>();
  }
  void TearDown() override {
    tc_.reset();
    xdp_.reset();
    pf_.reset();
    lab_.Down();
  }

  Lab lab_;
  std::unique_ptr<Prefilter> pf_;
  std::optional<Attachment> xdp_, tc_;
};

TEST_F(LiveTest, GsoBodyAtTcEgressAndCommandsAtXdpAreFramed) {
  int ifindex = if_nametoindex(lab_.host_if.c_str());
  ASSERT_GT(ifindex, 0);
  xdp_.emplace(Attachment::Xdp(*pf_, ifindex, /*skb_mode=*/false));
  tc_.emplace(Attachment::Tc(*pf_, ifindex, /*egress=*/true));

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(ls, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(110);
  inet_pton(AF_INET, lab_.host_ip, &addr.sin_addr);
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(ls, 1), 0);

  std::string body;
  for (int i = 0; body.size() < 256 * 1024; ++i)
    body += "Line " + std::to_string(i) + " of a long message body, Lorem ipsum dolor sit amet.\r\n";
  const std::string retr = "+OK " + std::to_string(body.size()) + " octets\r\n" + body + ".\r\n";

  std::string client_saw;
  std::thread client([&] {
    // Only this thread moves into the namespace.
    int nsfd = open(("/run/netns/" + lab_.ns).c_str(), O_RDONLY);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) return;
    close(nsfd);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{30, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    client_saw += ReadUntil(s, "\r\n");
    WriteAll(s, "RETR 1\r\n");
    client_saw += ReadUntil(s, "\r\n.\r\n");
    WriteAll(s, "NOOP\r\n");
    client_saw += ReadUntil(s, "+OK done\r\n");
    close(s);
  });
  int c = accept(ls, nullptr, nullptr);
  ASSERT_GE(c, 0);
  WriteAll(c, "+OK ready\r\n");
  EXPECT_EQ(ReadUntil(c, "\r\n"), "RETR 1\r\n");
  WriteAll(c, retr);
  EXPECT_EQ(ReadUntil(c, "\r\n"), "NOOP\r\n");
  WriteAll(c, "+OK done\r\n");
  client.join();
  close(c);
  close(ls);
  ASSERT_EQ(client_saw, "+OK ready\r\n" + retr + "+OK done\r\n");

  std::vector<std::string> lines;
  std::string cur, client_data;
  for (const auto& e : pf_->DrainEvents()) {
    EXPECT_NE(e.type, PG_EV_RAW);
    EXPECT_NE(e.type, PG_EV_ANOMALY) << "anomaly " << int(e.anomaly);
    if (e.type == PG_EV_CLIENT_DATA) client_data.append(reinterpret_cast<const char*>(e.data), e.len);
    if (e.type != PG_EV_SERVER_LINE) continue;
    cur.append(reinterpret_cast<const char*>(e.data), e.len);
    if (e.flags & PG_EVF_LINE_END) {
      lines.push_back(cur);
      cur.clear();
    }
  }
  EXPECT_EQ(client_data, "RETR 1\r\nNOOP\r\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "+OK ready\r\n");
  EXPECT_EQ(lines[1], "+OK " + std::to_string(body.size()) + " octets\r\n");
  EXPECT_EQ(lines[2], "+OK done\r\n");

  auto counters = pf_->ReadCounters();
  uint64_t to_client_pkts = PacketCount(counters, Hook::kTcEgress, PG_CLASS_TO_CLIENT);
  EXPECT_GE(counters[PG_CNT_PAYLOAD_BYTES_TO_CLIENT], retr.size());
  // Fewer packets than MTU-sized segments would need: TC saw GSO skbs.
  EXPECT_LT(to_client_pkts * 1448, retr.size());
  EXPECT_EQ(counters[PG_CNT_ESCALATIONS], 0u);
  EXPECT_EQ(counters[PG_CNT_MIDSTREAM_MISS], 0u);
  EXPECT_EQ(counters[PG_CNT_RINGBUF_FULL], 0u);
  EXPECT_GT(PacketCount(counters, Hook::kXdp, PG_CLASS_TO_SERVER), 0u);
}

}  // namespace
}  // namespace popguard::test

// Test fixture of the headnode tests: a temp tree with a read-write export
// ("0"), a read-only export ("1") and a secret file beside them (outside
// both), a FileServer on it, and helpers that drive handle() with encoded
// requests and decode the replies.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "headnode/fileserver.h"
#include "proto/codec.h"

namespace mrc::headnode {

using namespace std::chrono_literals;
using proto::Op;
namespace fs = std::filesystem;

inline const std::string k_secret = "TOPSECRET-outside-the-export";

inline Bytes to_bytes(const std::string& s) {
  auto p = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(p, p + s.size());
}
inline std::string to_string(const Bytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FileServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mrc-fs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    m_top = tmpl;
    m_rw = m_top + "/rw";
    m_ro = m_top + "/ro";
    fs::create_directories(m_rw + "/sub");
    fs::create_directories(m_ro);
    write_file(m_top + "/secret", k_secret);
    write_file(m_rw + "/a.txt", "hello");
    write_file(m_ro + "/file.txt", "read only");
    auto srv = FileServer::create({{m_rw, 0}, {m_ro, 1}});
    ASSERT_TRUE(srv) << srv.error().message;
    m_fs = std::move(*srv);
    m_e0 = lookup(proto::k_root_nodeid, "0").nodeid;
    m_e1 = lookup(proto::k_root_nodeid, "1").nodeid;
  }
  void TearDown() override {
    m_fs.reset();
    std::error_code ec;
    fs::remove_all(m_top, ec);
  }

  /// One request through handle(): the errno, or the decoded reply.
  template <typename Rep, typename Req>
  Result<Rep> call(Op op, const Req& req) {
    auto [err, body] = m_fs->handle(op, proto::encode(req));
    if (err) return fail(err, std::strerror(err));
    auto rep = proto::decode<Rep>(body);
    EXPECT_TRUE(rep) << "reply does not decode";
    return rep;
  }
  /// The errno of a request whose reply we do not need.
  template <typename Req>
  int err(Op op, const Req& req) {
    return m_fs->handle(op, proto::encode(req)).first;
  }

  proto::Entry lookup(uint64_t parent, const std::string& name) {
    auto e = call<proto::Entry>(Op::Lookup, proto::NameReq{parent, name});
    EXPECT_TRUE(e) << "lookup " << name << ": " << (e ? "" : e.error().message);
    return e ? *e : proto::Entry{};
  }
  uint64_t open(uint64_t nodeid, uint32_t flags) {
    auto r = call<proto::FhRep>(Op::Open, proto::OpenReq{nodeid, flags});
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? r->fh : 0;
  }
  proto::CreateRep create(uint64_t parent, const std::string& name, uint32_t mode = 0644,
                          uint32_t flags = O_RDWR | O_CREAT | O_EXCL) {
    auto r = call<proto::CreateRep>(Op::Create, proto::CreateReq{parent, name, mode, flags});
    EXPECT_TRUE(r) << "create " << name << ": " << (r ? "" : r.error().message);
    return r ? *r : proto::CreateRep{};
  }
  std::string read(uint64_t fh, uint64_t off, uint32_t size) {
    auto r = call<proto::DataRep>(Op::Read, proto::ReadReq{fh, off, size});
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? to_string(r->data) : "";
  }
  std::vector<proto::DirEntry> list(uint64_t dir_node, uint32_t batch = 1024) {
    auto fh = call<proto::FhRep>(Op::Opendir, proto::NodeReq{dir_node});
    EXPECT_TRUE(fh);
    std::vector<proto::DirEntry> all;
    uint64_t off = 0;
    for (int guard = 0; fh && guard < 10000; ++guard) {
      auto rep = call<proto::ReaddirRep>(Op::Readdirplus, proto::ReaddirReq{fh->fh, off, batch});
      EXPECT_TRUE(rep);
      if (!rep || rep->entries.empty()) break;
      EXPECT_LE(rep->entries.size(), batch);
      for (auto& e : rep->entries) all.push_back(e);
      off = rep->entries.back().next_offset;
    }
    if (fh) {
      EXPECT_EQ(err(Op::Releasedir, proto::FhReq{fh->fh}), 0);
    }
    return all;
  }
  void forget(uint64_t nodeid, uint64_t n) { m_fs->forget({{{nodeid, n}}}); }

  std::string m_top, m_rw, m_ro;
  std::unique_ptr<FileServer> m_fs;
  uint64_t m_e0 = 0, m_e1 = 0;
};

}  // namespace mrc::headnode

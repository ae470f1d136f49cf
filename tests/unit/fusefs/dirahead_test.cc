// DirAhead (fusefs/dirahead.h): listings asked for ahead are handed out at
// most once, never after a drop() of their directory (also while in
// flight), never past max_age; every lookup a listing carries is either
// taken by the asker or released, exactly once.
#include "fusefs/dirahead.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace mrc::fusefs {
namespace {

using namespace std::chrono_literals;

/// A fake head: the listing of directory d names entries d*1000+1..+3;
/// fetches of the directories in `blocked` wait until release_fetches().
class FakeHead {
 public:
  Result<std::pair<proto::ReaddirRep, DirAhead::Token>> fetch(uint64_t d, uint32_t max) {
    {
      std::unique_lock lk(mu);
      ++fetches[d];
      last_max = max;
      cv.wait(lk, [&] { return !blocked.count(d) || open; });
    }
    if (failing.count(d)) return fail(EIO, "fake failure");
    proto::ReaddirRep r;
    for (uint64_t i = 1; i <= 3; ++i) {
      proto::DirEntry e;
      e.name = "e" + std::to_string(i);
      e.next_offset = i;
      e.entry.nodeid = d * 1000 + i;
      r.entries.push_back(e);
      std::lock_guard lk(mu);
      ++outstanding[e.entry.nodeid];  // one lookup counted
    }
    r.eof = 1;
    return std::pair{r, DirAhead::Token{d, 7}};
  }
  void release(const std::vector<proto::DirEntry>& es) {
    std::lock_guard lk(mu);
    for (auto& e : es) --outstanding[e.entry.nodeid];
    ++releases;
  }
  void taken(const proto::ReaddirRep& r) {
    std::lock_guard lk(mu);
    for (auto& e : r.entries) --outstanding[e.entry.nodeid];
  }
  void release_fetches() {
    {
      std::lock_guard lk(mu);
      open = true;
    }
    cv.notify_all();
  }
  int fetched(uint64_t d) {
    std::lock_guard lk(mu);
    return fetches[d];
  }
  /// Lookups neither taken nor released.
  int leaked() {
    std::lock_guard lk(mu);
    int n = 0;
    for (auto& [id, c] : outstanding) n += c;
    return n;
  }

  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, int> fetches, outstanding;
  std::set<uint64_t> blocked, failing;
  bool open = false;
  int releases = 0;
  uint32_t last_max = 0;
};

struct DirAheadTest : ::testing::Test {
  FakeHead head;
  std::unique_ptr<DirAhead> ahead;
  void make(std::chrono::milliseconds max_age = DirAhead::k_max_age) {
    ahead = std::make_unique<DirAhead>([this](uint64_t d, uint32_t m) { return head.fetch(d, m); },
                                       [this](const std::vector<proto::DirEntry>& es) { head.release(es); },
                                       max_age);
    ahead->start();
  }
  /// Waits until `d` was fetched (its request sent).
  void wait_fetched(uint64_t d) {
    for (int i = 0; i < 2000 && head.fetched(d) == 0; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_GT(head.fetched(d), 0) << "directory " << d << " never asked for";
  }
  std::optional<std::pair<proto::ReaddirRep, DirAhead::Token>> take(uint64_t d) {
    auto got = ahead->take(d, DirAhead::Clock::now() + 5s);
    if (got) head.taken(got->first);
    return got;
  }
};

TEST_F(DirAheadTest, AListingAskedAheadIsTakenOnceWithItsToken) {
  make();
  ahead->want({5}, 42);
  wait_fetched(5);
  auto got = take(5);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->first.entries.size(), 3u);
  EXPECT_EQ(got->second.a, 5u);  // the token the fetch read before sending
  EXPECT_EQ(head.last_max, 42u);
  EXPECT_FALSE(take(5)) << "handed out twice";
  EXPECT_EQ(head.fetched(5), 1);
  ahead->stop();
  EXPECT_EQ(head.leaked(), 0);
}

TEST_F(DirAheadTest, NothingWantedNothingTaken) {
  make();
  EXPECT_FALSE(take(9));
  EXPECT_EQ(head.fetched(9), 0);
}

TEST_F(DirAheadTest, ADropWhileInFlightDiscardsTheReply) {
  make();
  head.blocked.insert(5);
  ahead->want({5}, 10);
  wait_fetched(5);
  ahead->drop(5);  // the directory changed while its reply was on the way
  head.release_fetches();
  EXPECT_FALSE(take(5)) << "a listing from before the change was handed out";
  ahead->stop();
  EXPECT_EQ(head.leaked(), 0) << "the discarded listing's lookups were not given back";
}

TEST_F(DirAheadTest, ADropOfAReadyListingReleasesIt) {
  make();
  ahead->want({5}, 10);
  wait_fetched(5);
  for (int i = 0; i < 2000 && head.leaked() == 0; ++i) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);
  ahead->drop(5);
  EXPECT_EQ(head.leaked(), 0);
  EXPECT_FALSE(take(5));
  EXPECT_EQ(ahead->stats().discarded, 1u);
}

TEST_F(DirAheadTest, AnOldListingIsNotHandedOut) {
  make(50ms);
  ahead->want({5}, 10);
  wait_fetched(5);
  std::this_thread::sleep_for(150ms);
  EXPECT_FALSE(take(5)) << "a listing past max_age was handed out";
  EXPECT_EQ(head.leaked(), 0);
}

TEST_F(DirAheadTest, AFailedFetchGivesNothing) {
  make();
  head.failing.insert(5);
  ahead->want({5}, 10);
  wait_fetched(5);
  EXPECT_FALSE(take(5));
}

TEST_F(DirAheadTest, TakeWaitsForTheReplyInFlight) {
  make();
  head.blocked.insert(5);
  ahead->want({5}, 10);
  wait_fetched(5);
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    head.release_fetches();
  });
  auto got = take(5);
  t.join();
  EXPECT_TRUE(got) << "take() did not wait for the listing in flight";
  ahead->stop();
  EXPECT_EQ(head.leaked(), 0);
}

TEST_F(DirAheadTest, BoundedAndTheFirstWantedGoesFirst) {
  make();
  // Every thread busy: the rest stays queued.
  for (uint64_t d = 1; d <= DirAhead::k_threads; ++d) head.blocked.insert(d);
  std::vector<uint64_t> busy;
  for (uint64_t d = 1; d <= DirAhead::k_threads; ++d) busy.push_back(d);
  ahead->want(busy, 10);
  for (uint64_t d : busy) wait_fetched(d);
  std::vector<uint64_t> many;
  for (uint64_t d = 100; d < 100 + 3 * DirAhead::k_max; ++d) many.push_back(d);
  ahead->want(many, 10);
  head.release_fetches();
  // The first ones of the newest want are kept; the tail did not fit.
  wait_fetched(100);
  EXPECT_TRUE(take(100));
  EXPECT_FALSE(take(100 + 3 * DirAhead::k_max - 1));
  ahead->stop();
  int fetched = 0;
  for (uint64_t d : many) fetched += head.fetched(d);
  EXPECT_LE(static_cast<size_t>(fetched), DirAhead::k_max);
  EXPECT_EQ(head.leaked(), 0);
}

TEST_F(DirAheadTest, RandomWantsTakesAndDropsLoseNoLookup) {
  make(30ms);
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!stop) {
        uint64_t d = 1 + rng() % 40;
        switch (rng() % 4) {
          case 0: ahead->want({d, d + 1, d + 2}, 10); break;
          case 1: take(d); break;
          case 2: ahead->drop(d); break;
          default: for (uint64_t e = d; e < d + 5; ++e) ahead->drop(e);
        }
      }
    });
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (auto& t : ts) t.join();
  ahead->stop();
  EXPECT_EQ(head.leaked(), 0);
  EXPECT_GT(ahead->stats().asked, 0u);
}

}  // namespace
}  // namespace mrc::fusefs

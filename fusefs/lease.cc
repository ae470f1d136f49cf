// Lease renewal thread and the invalidation thread of the FUSE client.
#include "fusefs/lease.h"

#include <algorithm>

#include "common/log.h"
#include "proto/codec.h"

namespace mrc::fusefs {

namespace {
int64_t ns_of(Lease::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

// ---- Lease ------------------------------------------------------------------

Lease::Lease(proto::Connection& conn, std::chrono::milliseconds term) : m_conn(conn), m_term(term) {}

Lease::~Lease() { stop(); }

bool Lease::start() {
  m_started_ns = ns_of(Clock::now());
  bool ok = renew_once();
  m_thread = std::thread([this] { loop(); });
  return ok;  // false also for a server without leases
}

void Lease::stop() {
  {
    std::lock_guard lk(m_mu);
    m_stop = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

double Lease::cache_timeout() const {
  int64_t until = m_until_ns.load();
  if (until == 0) return 0;
  double left = static_cast<double>(until - ns_of(Clock::now())) / 1e9;
  double term = static_cast<double>(m_term.count()) / 1e3;
  left -= term / 100;  // clock-rate margin
  return std::clamp(left, 0.0, term);
}

std::chrono::milliseconds Lease::since_renewal() const {
  if (m_unsupported) return std::chrono::milliseconds(0);
  int64_t until = m_until_ns.load();
  int64_t last = until ? until - std::chrono::duration_cast<std::chrono::nanoseconds>(m_term).count()
                       : m_started_ns.load();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(ns_of(Clock::now()) - last));
}

bool Lease::renew_once() {
  auto sent = Clock::now();
  auto r = m_conn.call(proto::Op::Renew, {}, m_term);
  if (!r) {
    if (r.error().code == ENOSYS) {  // a server without leases: cache nothing, stop asking
      std::lock_guard lk(m_mu);
      m_stop = true;
      m_unsupported = true;
    } else if (!m_conn.closed()) {
      logger("fusefs")->warn("lease not renewed: {}", r.error().message);
    }
    return false;
  }
  int64_t until = ns_of(sent + m_term);
  int64_t cur = m_until_ns.load();
  while (until > cur && !m_until_ns.compare_exchange_weak(cur, until)) {
  }
  return true;
}

void Lease::loop() {
  auto period = m_term / 3;
  while (true) {
    {
      std::unique_lock lk(m_mu);
      if (m_cv.wait_for(lk, period, [&] { return m_stop; })) return;
    }
    if (m_conn.closed()) return;
    renew_once();
  }
}

// ---- Invalidator --------------------------------------------------------------

Invalidator::Invalidator(proto::Connection& conn) : m_conn(conn) {}

Invalidator::~Invalidator() { stop(); }

void Invalidator::start(Apply apply) {
  m_apply = std::move(apply);
  {
    std::lock_guard lk(m_mu);
    m_started = true;
  }
  for (auto& h : m_helpers) h.thread = std::thread([this, &h] { help(h); });
  m_thread = std::thread([this] { loop(); });
  m_recall_thread = std::thread([this] { recall_loop(); });
}

void Invalidator::stop() {
  {
    std::lock_guard lk(m_mu);
    m_stop = true;
    for (auto& h : m_helpers) h.cv.notify_all();
  }
  m_cv.notify_all();
  m_recall_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
  if (m_recall_thread.joinable()) m_recall_thread.join();
  // A helper blocked in the kernel returns once the request holding the
  // lock is answered (the loop still serves: unmount stops us first).
  for (auto& h : m_helpers)
    if (h.thread.joinable()) h.thread.join();
}

void Invalidator::help(Helper& h) {
  auto log = logger("fusefs");
  std::unique_lock lk(m_mu);
  while (true) {
    h.cv.wait(lk, [&] { return m_stop || h.job; });
    if (m_stop) return;
    auto job = std::move(h.job);
    lk.unlock();
    for (const auto& item : job->items) {
      int rc = m_apply.full(item);
      if (rc != 0 && rc != -ENOENT)
        log->debug("invalidate kind {} node {} {:?}: {}", item.kind, item.nodeid, item.name, rc);
    }
    lk.lock();
    h.busy = false;
    m_done_cv.notify_all();
  }
}

void Invalidator::on_request(uint64_t id, Bytes payload) {
  auto req = proto::decode<proto::InvalidateReq>(payload);
  if (!req) {
    // A head that speaks our version never sends this: end the session.
    m_conn.close("malformed invalidation: " + req.error().message);
    return;
  }
  // Before any later reply is delivered (we are the reader thread).
  m_gen.fetch_add(1);
  bool recall = !req->items.empty() && std::all_of(req->items.begin(), req->items.end(), [](const auto& i) {
    return i.kind == static_cast<uint8_t>(proto::InvalKind::Recall);
  });
  {
    std::lock_guard lk(m_mu);
    if (m_started && !m_stop) {
      (recall ? m_recalls : m_queue).push_back(Job{id, std::move(*req)});
      (recall ? m_recall_cv : m_cv).notify_one();
      return;
    }
  }
  m_conn.reply(proto::Op::Invalidate, id, 0, {});  // nothing mounted, nothing cached
}

bool Invalidator::next(std::deque<Job>& queue, std::condition_variable& cv, Job& job) {
  {
    std::unique_lock lk(m_mu);
    cv.wait(lk, [&] { return m_stop || !queue.empty(); });
    if (m_stop) return false;
    job = std::move(queue.front());
    queue.pop_front();
  }
  // Barrier: replies that passed their generation check are in the kernel.
  { std::unique_lock barrier(m_reply_mu); }
  return true;
}

void Invalidator::recall_loop() {
  auto log = logger("fusefs");
  Job job;
  // After the barrier, a lease grant that passed its generation check
  // (accept_lease, under the guard) is taken before we recall it.
  while (next(m_recalls, m_recall_cv, job)) {
    for (const auto& item : job.req.items) {
      int rc = m_apply.full(item);  // flushes what we buffered; no kernel lock
      if (rc != 0 && rc != -ENOENT) log->debug("recall of node {}: {}", item.nodeid, rc);
    }
    if (m_apply.forward) m_apply.forward(job.req);  // as loop() does
    m_applied.fetch_add(1);
    m_conn.reply(proto::Op::Invalidate, job.id, 0, {});
  }
}

void Invalidator::loop() {
  auto log = logger("fusefs");
  Job job;
  while (next(m_queue, m_cv, job)) {
    auto req = std::make_shared<proto::InvalidateReq>(std::move(job.req));
    bool done = false;
    bool busy = false;
    if (m_apply.busy)
      for (const auto& item : req->items) busy = busy || m_apply.busy(item);
    if (!busy) {
      std::unique_lock lk(m_mu);
      Helper* h = nullptr;
      for (auto& c : m_helpers)
        if (!c.busy) h = &c;
      if (h) {
        h->busy = true;
        h->job = req;
        h->cv.notify_one();
        done = m_done_cv.wait_for(lk, k_block, [&] { return !h->busy || m_stop; }) && !h->busy;
      }
    }
    if (!done) {
      // Blocked (or every helper is): the non-blocking form now; the full
      // one, if it runs, completes by itself later.
      m_quick.fetch_add(1);
      bool epoch_done = false;
      for (const auto& item : req->items) {
        if (item.kind == static_cast<uint8_t>(proto::InvalKind::Entry)) {
          if (epoch_done) continue;
          epoch_done = true;
        }
        int rc = m_apply.quick(item);
        if (rc != 0 && rc != -ENOENT)
          log->warn("invalidation of node {} could not be applied at once ({}): the kernel may serve a "
                    "cached name until this target's own change in that directory completes",
                    item.nodeid, rc);
      }
    }
    // Our kernel first: a re-exporting service that refetches must get
    // fresh data from it.
    if (m_apply.forward) m_apply.forward(*req);
    m_applied.fetch_add(1);
    if (log->should_log(spdlog::level::debug))
      for (const auto& item : req->items)
        log->debug("invalidate {} node {} {:?}: {}", item.kind ? "entry" : "inode", item.nodeid, item.name,
                   done ? "applied" : "quick");
    m_conn.reply(proto::Op::Invalidate, job.id, 0, {});
  }
}

}  // namespace mrc::fusefs

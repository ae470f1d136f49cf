// Watcher: fanotify marks, the handle map, and the event loop.
#include "headnode/watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/log.h"

namespace mrc::headnode {
namespace {

/// What a head-local change looks like to us: data, attributes, names.
constexpr uint64_t k_mask = FAN_MODIFY | FAN_ATTRIB | FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM |
                            FAN_MOVED_TO | FAN_DELETE_SELF | FAN_ONDIR;
constexpr uint64_t k_dirent_events = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO;
/// An inode mark on a non-directory may not ask for directory events (ENOTDIR).
uint64_t inode_mask(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) return k_mask;
  return k_mask & ~(k_dirent_events | FAN_ONDIR);
}

std::string proc_fd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

/// fsid + handle, as fanotify reports them, for the inode of `fd`.
std::optional<std::string> handle_key(int fd) {
  struct statfs sfs {};
  if (::fstatfs(fd, &sfs) != 0) return std::nullopt;
  alignas(file_handle) char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<file_handle*>(buf);
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) != 0) return std::nullopt;
  std::string k(reinterpret_cast<const char*>(&sfs.f_fsid), sizeof(sfs.f_fsid));
  k.append(reinterpret_cast<const char*>(&fh->handle_type), sizeof(fh->handle_type));
  k.append(reinterpret_cast<const char*>(fh->f_handle), fh->handle_bytes);
  return k;
}

}  // namespace

std::unique_ptr<Watcher> Watcher::create(Coherence& coh, WatchMode mode) {
  int fan = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME_TARGET,
                            O_RDONLY | O_CLOEXEC);
  if (fan < 0) {
    logger("watcher")->warn(
        "fanotify unavailable ({}): changes made directly on this machine reach the targets only "
        "when their lease term ends",
        std::strerror(errno));
    return nullptr;
  }
  std::unique_ptr<Watcher> w(new Watcher(coh, UniqueFd(fan), UniqueFd(::eventfd(0, EFD_CLOEXEC))));
  if (mode == WatchMode::InodeMarks) w->m_fs_marks = false;
  coh.set_observer(w.get());
  w->m_thread = std::thread([p = w.get()] { p->loop(); });
  return w;
}

Watcher::Watcher(Coherence& coh, UniqueFd fan, UniqueFd wake)
    : m_coh(coh), m_fan(std::move(fan)), m_wake(std::move(wake)), m_self(::getpid()) {}

Watcher::~Watcher() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(m_wake.get(), &one, sizeof(one));
  if (m_thread.joinable()) m_thread.join();
  m_coh.set_observer(nullptr);
}

void Watcher::key_added(dev_t dev, ino_t ino, int fd) {
  std::lock_guard lk(m_mu);
  if (m_unwatchable.count(dev)) return;
  auto key = handle_key(fd);
  if (!key) {
    m_unwatchable.insert(dev);
    logger("watcher")->info("filesystem {}:{} has no file handles ({}): its head-local changes are not watched",
                            major(dev), minor(dev), std::strerror(errno));
    return;
  }
  if (m_fs_marks && !m_marked.count(dev)) {
    if (::fanotify_mark(m_fan.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, k_mask, AT_FDCWD,
                        proc_fd(fd).c_str()) == 0) {
      m_marked.insert(dev);
    } else if (errno == EPERM) {
      m_fs_marks = false;  // unprivileged: inode marks from now on
      logger("watcher")->info("no filesystem marks without CAP_SYS_ADMIN: one inode mark per cached inode");
    } else {
      m_unwatchable.insert(dev);
      logger("watcher")->info("cannot watch filesystem {}:{}: {}", major(dev), minor(dev), std::strerror(errno));
      return;
    }
  }
  if (!m_fs_marks &&
      ::fanotify_mark(m_fan.get(), FAN_MARK_ADD, inode_mask(fd), AT_FDCWD, proc_fd(fd).c_str()) != 0) {
    logger("watcher")->debug("no inode mark on {}:{}: {}", dev, ino, std::strerror(errno));
    return;
  }
  m_by_handle[*key] = Key{dev, ino};
  m_handle_of[dev][ino] = std::move(*key);
}

void Watcher::key_removed(dev_t dev, ino_t ino, int fd) {
  std::lock_guard lk(m_mu);
  auto d = m_handle_of.find(dev);
  if (d == m_handle_of.end()) return;
  auto i = d->second.find(ino);
  if (i == d->second.end()) return;
  m_by_handle.erase(i->second);
  d->second.erase(i);
  if (!m_marked.count(dev))
    ::fanotify_mark(m_fan.get(), FAN_MARK_REMOVE, inode_mask(fd), AT_FDCWD, proc_fd(fd).c_str());
}

void Watcher::loop() {
  auto log = logger("watcher");
  std::vector<char> buf(256 * 1024);
  while (true) {
    pollfd fds[2] = {{m_fan.get(), POLLIN, 0}, {m_wake.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log->error("poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents & POLLIN) return;
    ssize_t n = ::read(m_fan.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      log->error("reading fanotify events: {}", std::strerror(errno));
      return;
    }
    handle(buf.data(), static_cast<size_t>(n));
  }
}

void Watcher::handle(const char* buf, size_t len) {
  std::vector<Change> changes;
  auto add = [&](Change c) {
    for (const auto& x : changes)
      if (x.kind == c.kind && x.dev == c.dev && x.ino == c.ino && x.name == c.name) return;
    changes.push_back(std::move(c));
  };
  {
    std::lock_guard lk(m_mu);
    for (size_t off = 0; off + sizeof(fanotify_event_metadata) <= len;) {
      auto* m = reinterpret_cast<const fanotify_event_metadata*>(buf + off);
      if (m->event_len < sizeof(*m) || off + m->event_len > len || m->vers != FANOTIFY_METADATA_VERSION) break;
      off += m->event_len;
      if (m->mask & FAN_Q_OVERFLOW) {
        logger("watcher")->warn("event queue overflowed: some head-local changes reach the targets only "
                                "when their lease term ends");
        continue;
      }
      if (m->pid == m_self) continue;  // our own write: already invalidated
      const char* rec = reinterpret_cast<const char*>(m) + m->metadata_len;
      const char* end = reinterpret_cast<const char*>(m) + m->event_len;
      while (rec + sizeof(fanotify_event_info_header) <= end) {
        auto* h = reinterpret_cast<const fanotify_event_info_header*>(rec);
        if (h->len < sizeof(*h) || rec + h->len > end) break;
        if (h->info_type == FAN_EVENT_INFO_TYPE_FID || h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
          auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(rec);
          auto* fh = reinterpret_cast<const file_handle*>(fid->handle);
          std::string key(reinterpret_cast<const char*>(&fid->fsid), sizeof(fid->fsid));
          key.append(reinterpret_cast<const char*>(&fh->handle_type), sizeof(fh->handle_type));
          key.append(reinterpret_cast<const char*>(fh->f_handle), fh->handle_bytes);
          auto it = m_by_handle.find(key);
          if (it != m_by_handle.end()) {
            const Key& k = it->second;
            if (h->info_type == FAN_EVENT_INFO_TYPE_FID) {
              add(Change{proto::InvalKind::Inode, k.dev, k.ino, {}});
            } else if (m->mask & k_dirent_events) {
              const char* name = reinterpret_cast<const char*>(fh->f_handle) + fh->handle_bytes;
              add(Change{proto::InvalKind::Entry, k.dev, k.ino, std::string(name, ::strnlen(name, end - name))});
              add(Change{proto::InvalKind::Inode, k.dev, k.ino, {}});
            }
          }
        }
        rec += h->len;
      }
    }
  }
  if (changes.empty()) return;
  m_events.fetch_add(1);
  m_coh.changed({}, changes);
}

}  // namespace mrc::headnode

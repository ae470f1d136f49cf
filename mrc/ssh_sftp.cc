// SshSession::upload: one local file to the target over SFTP, made
// visible atomically (temporary name, then rename). Not a general SFTP
// client: no downloads, no directory trees.
#include <fcntl.h>
#include <libssh/sftp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <random>
#include <vector>

#include "common/log.h"
#include "mrc/ssh.h"
#include "mrc/ssh_state.h"

namespace mrc::launcher {
namespace {

/// Bytes per SFTP write: libssh 0.10 writes synchronously, so fewer and
/// larger requests make the upload faster on a long round trip. OpenSSH's
/// sftp-server accepts messages up to 256 KiB.
constexpr size_t k_write_chunk = 128 * 1024;

/// The SFTP status as words, with errno for Error::code.
std::pair<int, std::string> sftp_status(sftp_session sftp, ssh_session s) {
  switch (sftp_get_error(sftp)) {
    case SSH_FX_NO_SUCH_FILE:
      return {ENOENT, "No such file or directory"};
    case SSH_FX_PERMISSION_DENIED:
      return {EACCES, "Permission denied"};
    case SSH_FX_FILE_ALREADY_EXISTS:
      return {EEXIST, "File exists"};
    case SSH_FX_WRITE_PROTECT:
      return {EROFS, "Read-only file system"};
    case SSH_FX_NO_SUCH_PATH:
      return {ENOENT, "No such path"};
    case SSH_FX_OP_UNSUPPORTED:
      return {ENOTSUP, "Operation unsupported"};
    case SSH_FX_CONNECTION_LOST:
    case SSH_FX_NO_CONNECTION:
      return {EIO, "connection lost: " + ssh_error(s)};
    case SSH_FX_FAILURE:
      return {EIO, "Failure (the server gave no reason)"};
    default:
      return {EIO, ssh_error(s)};
  }
}

/// Frees the SFTP session on every return path.
struct SftpGuard {
  sftp_session sftp;
  ~SftpGuard() { sftp_free(sftp); }
};

}  // namespace

Result<void> SshSession::upload(const std::string& local_path, const std::string& remote_path, unsigned mode) {
  assert(!m_state->pump.joinable() && "upload after exec_bridged");
  ssh_session s = m_state->session;
  // The SFTP server starts in the remote home, so "~/x" is just "x".
  std::string path = remote_path;
  if (path.rfind("~/", 0) == 0) path = path.substr(2);
  if (path.empty() || path == "~" || path.back() == '/')
    return fail(EINVAL, "bad remote path for upload: '" + remote_path + "'");
  std::string where = m_state->peer + ":" + remote_path;

  UniqueFd in(::open(local_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return fail_errno("open " + local_path);

  sftp_session sftp = sftp_new(s);
  if (!sftp) return fail(EIO, "cannot start SFTP on " + m_state->peer + ": " + ssh_error(s));
  SftpGuard guard{sftp};
  if (sftp_init(sftp) != SSH_OK)
    return fail(EIO, "cannot start SFTP on " + m_state->peer + " (is its sftp subsystem enabled?): " + ssh_error(s));
  auto error = [&](const std::string& what, const std::string& remote) {
    auto [code, text] = sftp_status(sftp, s);
    return fail(code, what + " " + m_state->peer + ":" + remote + ": " + text);
  };

  // Parent directories, private to the user, like ~/.cache/mrc itself.
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (sftp_attributes a = sftp_stat(sftp, dir.c_str())) {
      bool is_dir = a->type == SSH_FILEXFER_TYPE_DIRECTORY;
      sftp_attributes_free(a);
      if (!is_dir) return fail(ENOTDIR, "cannot create directory " + m_state->peer + ":" + dir + ": Not a directory");
      continue;
    }
    if (sftp_mkdir(sftp, dir.c_str(), 0700) != 0) return error("cannot create directory", dir);
  }

  // Write a temporary file beside the target; a half-written binary must
  // never be found at the final path (another mrc may be probing it).
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".tmp-%d-%08x", static_cast<int>(::getpid()), rd());
  std::string tmp = path + suffix;
  sftp_file f = sftp_open(sftp, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!f) return error("cannot create", tmp);
  std::vector<char> buf(k_write_chunk);
  size_t total = 0;
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto e = fail_errno("read " + local_path);
      sftp_close(f);
      sftp_unlink(sftp, tmp.c_str());
      return e;
    }
    if (n == 0) break;
    for (size_t done = 0; done < static_cast<size_t>(n);) {
      ssize_t w = sftp_write(f, buf.data() + done, static_cast<size_t>(n) - done);
      if (w <= 0) {
        auto e = error("cannot write", tmp);
        sftp_close(f);
        sftp_unlink(sftp, tmp.c_str());
        return e;
      }
      done += static_cast<size_t>(w);
    }
    total += static_cast<size_t>(n);
  }
  if (sftp_close(f) != SSH_NO_ERROR) {
    auto e = error("cannot write", tmp);
    sftp_unlink(sftp, tmp.c_str());
    return e;
  }
  if (sftp_chmod(sftp, tmp.c_str(), mode) != 0) {
    auto e = error("cannot set the mode of", tmp);
    sftp_unlink(sftp, tmp.c_str());
    return e;
  }
  // libssh uses posix-rename@openssh.com when offered (replaces the target);
  // plain SFTP v3 rename refuses an existing target, so remove it and retry.
  if (sftp_rename(sftp, tmp.c_str(), path.c_str()) != 0) {
    sftp_unlink(sftp, path.c_str());
    if (sftp_rename(sftp, tmp.c_str(), path.c_str()) != 0) {
      auto e = error("cannot rename into place", remote_path);
      sftp_unlink(sftp, tmp.c_str());
      return e;
    }
  }
  logger("ssh")->info("uploaded {} ({} bytes) to {}", local_path, total, where);
  return {};
}

}  // namespace mrc::launcher

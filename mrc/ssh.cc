// SshSession: connecting (ssh_config, -o, -J), host key verification
// against known_hosts, public key authentication, and run_capture. The
// SFTP upload is in ssh_sftp.cc, the exec_bridged pump in ssh_pump.cc.
#include "mrc/ssh.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "common/log.h"
#include "mrc/ssh_state.h"

namespace mrc::launcher {
namespace {

/// Limit on each blocking libssh call after the key exchange (auth, channel
/// open, one SFTP request), s: connect_timeout_s is for reaching the host,
/// this is for a slow but live link; a dead one fails after it.
constexpr long k_io_timeout_s = 120;
/// Largest stdout run_capture buffers, bytes: it is for short probes.
constexpr size_t k_max_capture = 1 << 20;

/// What to do with a host key known_hosts does not vouch for.
enum class HostKeyPolicy {
  Strict,     // refuse unknown and changed keys (the default, like ssh's "ask" without a prompt)
  AcceptNew,  // add unknown keys, refuse changed ones (--accept-new, StrictHostKeyChecking=accept-new)
  AcceptAll,  // add unknown keys, warn about changed ones (StrictHostKeyChecking=no)
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

/// Quotes `s` for /bin/sh (libssh runs ProxyCommand through sh -c).
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// libssh's ProxyCommand for -J: OpenSSH's ssh carries the hops, like
/// libssh's own ProxyJump does (0.10 has no native jump support). We build
/// it ourselves rather than hand "ProxyJump" to the config parser so that
/// -F reaches the hops too (the jump hosts see the same config: keys,
/// known_hosts), and so that ssh's stderr, which libssh sends to
/// /dev/null, lands in `log_path` for the error message.
Result<std::string> jump_proxy_command(const SshOptions& o, const std::string& log_path) {
  if ((o.jump + o.config_file + log_path).find_first_of("%\n") != std::string::npos)
    return fail(EINVAL, "unsupported character ('%' or newline) in -J or -F");
  std::string hops = o.jump, last = o.jump;
  if (auto comma = hops.rfind(','); comma != std::string::npos) {
    last = hops.substr(comma + 1);
    hops = hops.substr(0, comma);
  } else {
    hops.clear();
  }
  std::string user, port, host = last;
  if (auto at = host.rfind('@'); at != std::string::npos) {
    user = host.substr(0, at);
    host = host.substr(at + 1);
  }
  if (auto colon = host.rfind(':'); colon != std::string::npos && host.find(':') == colon) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return fail(EINVAL, "bad jump host '" + o.jump + "'");
  std::string cmd = "exec ssh";
  if (!o.config_file.empty()) cmd += " -F " + shell_quote(o.config_file);
  if (!hops.empty()) cmd += " -J " + shell_quote(hops);
  if (!user.empty()) cmd += " -l " + shell_quote(user);
  if (!port.empty()) cmd += " -p " + shell_quote(port);
  return cmd + " -W '[%h]:%p' -- " + shell_quote(host) + " 2>" + shell_quote(log_path);
}

/// A temporary file's path, removed when this goes out of scope.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

/// The last non-empty line of a small text file ("" if none).
std::string last_line(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  char buf[4096];
  ssize_t n = ::pread(fd.get(), buf, sizeof(buf), 0);
  std::string text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
}

/// libssh's log callback while -o lines are parsed: keeps its complaints
/// ("Unknown option: X, line: N", "Unsupported option: ..."). Never throws.
void collect_complaints(int, const char*, const char* message, void* userdata) noexcept {
  try {
    if (std::strstr(message, " option: ")) static_cast<std::vector<std::string>*>(userdata)->push_back(message);
  } catch (...) {
  }
}

/// Writes `lines` to a private temporary file and has libssh parse it as
/// ssh_config: 0.10 has no public "parse this option string". Unknown keys
/// are errors, as with ssh; keys libssh knows but does not implement
/// (ServerAliveInterval, ...) are ignored with a warning.
Result<void> parse_config_lines(ssh_session s, const std::string& lines) {
  char path[] = "/tmp/mrc-ssh-options-XXXXXX";
  UniqueFd fd(::mkstemp(path));
  if (!fd) return fail_errno("create a temporary ssh config");
  auto w = write_all(fd.get(), std::as_bytes(std::span(lines.data(), lines.size())));
  // libssh's log level and callback are per thread: borrow them for the parse.
  std::vector<std::string> complaints;
  ssh_logging_callback old_cb = ssh_get_log_callback();
  void* old_data = ssh_get_log_userdata();
  int old_level = ssh_get_log_level();
  ssh_set_log_callback(collect_complaints);
  ssh_set_log_userdata(&complaints);
  ssh_set_log_level(SSH_LOG_TRACE);  // the complaints are logged at various levels
  int rc = w ? ssh_options_parse_config(s, path) : SSH_ERROR;
  ssh_set_log_level(old_level);
  ssh_set_log_userdata(old_data);
  ssh_set_log_callback(old_cb);
  ::unlink(path);
  if (!w) return tl::unexpected(w.error());
  if (rc != SSH_OK) return fail(EINVAL, "bad -o option: " + ssh_error(s));
  for (const std::string& c : complaints) {
    std::string key = c.substr(c.find(" option: ") + 9);
    key = key.substr(0, key.find(','));
    if (c.find("Unknown option") != std::string::npos) return fail(EINVAL, "bad -o option: unknown key '" + key + "'");
    logger("ssh")->warn("-o {} is not supported by libssh; ignored", key);
  }
  return {};
}

/// Applies everything in `o` to a fresh session, in ssh's order of
/// precedence: defaults, then the config file, then the command line.
Result<void> apply_options(ssh_session s, const SshOptions& o, HostKeyPolicy& policy, const std::string& jump_log) {
  if (o.host.empty()) return fail(EINVAL, "no host to connect to");
  if (ssh_options_set(s, SSH_OPTIONS_HOST, o.host.c_str()) != SSH_OK)
    return fail(EINVAL, "bad host '" + o.host + "': " + ssh_error(s));
  // Defaults the config may override.
  long timeout = o.connect_timeout_s;  // s
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
  int level = o.verbosity >= 5   ? SSH_LOG_FUNCTIONS
              : o.verbosity == 4 ? SSH_LOG_PACKET
              : o.verbosity == 3 ? SSH_LOG_PROTOCOL
                                 : SSH_LOG_NOLOG;
  ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &level);
  // AES-GCM first: with AES-NI it is ~1.3x faster than chacha20-poly1305
  // for bulk file traffic here (docs/benchmarks.md); a Ciphers line in the
  // config or -o still wins, being applied after this default.
  const char* ciphers = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
                        "aes128-ctr,aes256-ctr";
  ssh_options_set(s, SSH_OPTIONS_CIPHERS_C_S, ciphers);
  ssh_options_set(s, SSH_OPTIONS_CIPHERS_S_C, ciphers);
  // Small replies (file-service answers, acks) must not wait for Nagle.
  int nodelay = 1;
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);

  // The config: -F FILE alone, else ~/.ssh/config then /etc/ssh/ssh_config.
  if (!o.config_file.empty() && ::access(o.config_file.c_str(), R_OK) != 0)
    return fail(errno, "cannot read ssh config " + o.config_file + ": " + std::strerror(errno));
  if (ssh_options_parse_config(s, o.config_file.empty() ? nullptr : o.config_file.c_str()) != SSH_OK)
    return fail(EINVAL, "bad ssh config: " + ssh_error(s));

  // The command line: explicit fields, then -o, then -J.
  if (!o.user.empty() && ssh_options_set(s, SSH_OPTIONS_USER, o.user.c_str()) != SSH_OK)
    return fail(EINVAL, "bad user '" + o.user + "': " + ssh_error(s));
  if (o.port != 0) {
    unsigned port = static_cast<unsigned>(o.port);
    ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  }
  if (!o.known_hosts.empty()) ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, o.known_hosts.c_str());
  if (o.accept_new) policy = HostKeyPolicy::AcceptNew;
  std::string lines;
  for (const std::string& kv : o.options) {
    size_t sep = kv.find_first_of("= \t");
    std::string key = trim(kv.substr(0, sep));
    std::string value = sep == std::string::npos ? "" : trim(kv.substr(sep));
    if (!value.empty() && value.front() == '=') value = trim(value.substr(1));
    std::string k = lower(key);
    if (key.empty() || value.empty() || kv.find('\n') != std::string::npos || k == "host" || k == "match" ||
        k == "include")
      return fail(EINVAL, "bad -o option '" + kv + "' (expected Key=Value)");
    // Ours to enforce: libssh 0.10 only knows yes/no and ignores it when connecting.
    if (k == "stricthostkeychecking") {
      std::string v = lower(value);
      if (v == "accept-new")
        policy = HostKeyPolicy::AcceptNew;
      else if (v == "no" || v == "off")
        policy = HostKeyPolicy::AcceptAll;
      else if (v == "yes" || v == "ask")
        policy = o.accept_new ? HostKeyPolicy::AcceptNew : HostKeyPolicy::Strict;
      else
        return fail(EINVAL, "bad -o option '" + kv + "'");
      continue;
    }
    lines += key + " " + value + "\n";
  }
  if (!lines.empty())
    if (auto r = parse_config_lines(s, lines); !r) return r;
  if (!o.jump.empty()) {
    auto cmd = jump_proxy_command(o, jump_log);
    if (!cmd) return tl::unexpected(cmd.error());
    if (ssh_options_set(s, SSH_OPTIONS_PROXYCOMMAND, cmd->c_str()) != SSH_OK)
      return fail(EINVAL, "bad -J '" + o.jump + "': " + ssh_error(s));
  }
  return {};
}

/// A string option of the session (host, user, known_hosts), or `fallback`.
std::string option_string(ssh_session s, ssh_options_e what, const std::string& fallback) {
  char* v = nullptr;
  if (ssh_options_get(s, what, &v) != SSH_OK || v == nullptr) return fallback;
  std::string r = v;
  ssh_string_free_char(v);
  return r;
}

/// "ED25519", "ECDSA", "RSA": the key type as ssh names it in messages.
std::string key_type_name(ssh_key key) {
  std::string t = ssh_key_type_to_char(ssh_key_type(key)) ? ssh_key_type_to_char(ssh_key_type(key)) : "unknown";
  if (t.find("ed25519") != std::string::npos) return t.rfind("sk-", 0) == 0 ? "ED25519-SK" : "ED25519";
  if (t.find("ecdsa") != std::string::npos) return t.rfind("sk-", 0) == 0 ? "ECDSA-SK" : "ECDSA";
  if (t.find("rsa") != std::string::npos) return "RSA";
  for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return t;
}

/// "ED25519 SHA256:..." of the server's host key.
Result<std::string> host_key_description(ssh_session s) {
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(s, &key) != SSH_OK) return fail(EPROTO, "no host key from the server: " + ssh_error(s));
  unsigned char* hash = nullptr;
  size_t hlen = 0;
  std::string type = key_type_name(key);
  int rc = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen);
  ssh_key_free(key);
  if (rc != SSH_OK) return fail(EPROTO, "cannot hash the host key");
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  ssh_clean_pubkey_hash(&hash);
  std::string r = type + " " + (fp ? fp : "?");
  ssh_string_free_char(fp);
  return r;
}

/// Checks the host key against known_hosts under `policy` (known_hosts
/// files are the user's, named by `kh`; `label` is "host" or "[host]:port").
Result<void> verify_host_key(ssh_session s, HostKeyPolicy policy, const std::string& label, const std::string& kh) {
  auto desc = host_key_description(s);
  if (!desc) return tl::unexpected(desc.error());
  auto add = [&]() -> Result<void> {
    if (ssh_session_update_known_hosts(s) != SSH_OK)
      return fail(EIO, "cannot add the host key of " + label + " to " + kh + ": " + ssh_error(s));
    std::fprintf(stderr, "Warning: permanently added '%s' (%s) to the list of known hosts.\n", label.c_str(),
                 desc->c_str());
    return {};
  };
  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      return {};
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      if (policy == HostKeyPolicy::AcceptAll) {
        std::fprintf(stderr,
                     "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for %s (now %s); connecting anyway "
                     "because StrictHostKeyChecking=no\n",
                     label.c_str(), desc->c_str());
        return {};
      }
      return fail(EPERM, "REMOTE HOST IDENTIFICATION HAS CHANGED: the host key for " + label + " is now " + *desc +
                             ", which does not match the key recorded in " + kh +
                             " (someone may be intercepting the connection, or the host was reinstalled); "
                             "refusing to connect; if the change is expected, remove the old key with "
                             "ssh-keygen -R '" +
                             label + "' -f " + kh);
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      if (policy != HostKeyPolicy::Strict) return add();
      return fail(EPERM, "host key for " + label + " (" + *desc + ") is not known; verify it and add it to " + kh +
                             ", or run mrc with --accept-new");
    case SSH_KNOWN_HOSTS_ERROR:
      break;
  }
  return fail(EIO, "cannot check the host key of " + label + " against " + kh + ": " + ssh_error(s));
}

/// libssh's passphrase callback: prompts only when stdin is a terminal,
/// otherwise declines (the key is skipped). Never throws.
int passphrase_prompt(const char* prompt, char* buf, size_t len, int echo, int verify, void*) noexcept {
  if (!::isatty(STDIN_FILENO)) return -1;
  return ssh_getpass(prompt, buf, len, echo, verify);
}

/// Authenticates: none, then the -i identities, then ssh_userauth_publickey_auto
/// (the agent, then config IdentityFiles and ~/.ssh/id_{ed25519,ecdsa,rsa}).
Result<void> authenticate(ssh_session s, const SshOptions& o, const std::string& user_at_host) {
  auto log = logger("ssh");
  int rc = ssh_userauth_none(s, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return {};
  if (rc == SSH_AUTH_ERROR) return fail(EIO, "authentication with " + user_at_host + " failed: " + ssh_error(s));
  std::vector<std::string> tried, notes;
  for (const std::string& id : o.identities) {
    if (::access(id.c_str(), R_OK) != 0) {
      notes.push_back("cannot read " + id + ": " + std::strerror(errno));
      continue;
    }
    // Offer the public half first, so only keys the server accepts need decrypting.
    ssh_key pub = nullptr;
    if (ssh_pki_import_pubkey_file((id + ".pub").c_str(), &pub) == SSH_OK) {
      rc = ssh_userauth_try_publickey(s, nullptr, pub);
      ssh_key_free(pub);
      if (rc == SSH_AUTH_ERROR) return fail(EIO, "authentication with " + user_at_host + " failed: " + ssh_error(s));
      if (rc != SSH_AUTH_SUCCESS) {
        tried.push_back(id);
        continue;
      }
    }
    ssh_key priv = nullptr;
    if (ssh_pki_import_privkey_file(id.c_str(), nullptr, passphrase_prompt, nullptr, &priv) != SSH_OK) {
      notes.push_back("skipped " + id + " (encrypted or not a private key; add it to ssh-agent)");
      continue;
    }
    rc = ssh_userauth_publickey(s, nullptr, priv);
    ssh_key_free(priv);
    if (rc == SSH_AUTH_SUCCESS) {
      log->info("authenticated to {} with {}", user_at_host, id);
      return {};
    }
    if (rc == SSH_AUTH_ERROR) return fail(EIO, "authentication with " + user_at_host + " failed: " + ssh_error(s));
    tried.push_back(id);
  }
  rc = ssh_userauth_publickey_auto(s, nullptr, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return {};
  if (rc == SSH_AUTH_ERROR) return fail(EIO, "authentication with " + user_at_host + " failed: " + ssh_error(s));
  if (std::getenv("SSH_AUTH_SOCK")) tried.push_back("agent");
  tried.push_back("~/.ssh/id_ed25519, id_ecdsa, id_rsa and IdentityFile");
  std::string msg = "permission denied for " + user_at_host + " (tried: publickey with ";
  for (size_t i = 0; i < tried.size(); ++i) msg += (i ? ", " : "") + tried[i];
  int methods = ssh_userauth_list(s, nullptr);
  std::string allowed;
  if (methods & SSH_AUTH_METHOD_PUBLICKEY) allowed += " publickey";
  if (methods & SSH_AUTH_METHOD_PASSWORD) allowed += " password";
  if (methods & SSH_AUTH_METHOD_INTERACTIVE) allowed += " keyboard-interactive";
  if (methods & SSH_AUTH_METHOD_GSSAPI_MIC) allowed += " gssapi";
  if (!allowed.empty()) msg += "; the server allows:" + allowed;
  if (rc == SSH_AUTH_PARTIAL) msg += "; it wants a second factor, which mrc does not support";
  for (const std::string& n : notes) msg += "; " + n;
  return fail(EACCES, msg + ")");
}

}  // namespace

std::string ssh_error(ssh_session session) {
  const char* e = session ? ssh_get_error(session) : nullptr;
  return e && *e ? e : "unknown libssh error";
}

void copy_to_stderr(const char* data, size_t n) { (void)write_all(STDERR_FILENO, std::as_bytes(std::span(data, n))); }

SshState::~SshState() {
  if (pump.joinable()) {
    stop_w.reset();  // POLLHUP on the pump's end of the stop pipe
    pump.join();
  }
  if (channel) ssh_channel_free(channel);
  if (session) {
    ssh_disconnect(session);
    ssh_free(session);
  }
}

SshSession::SshSession(std::unique_ptr<SshState> state) : m_state(std::move(state)) {}
SshSession::~SshSession() = default;

Result<std::unique_ptr<SshSession>> SshSession::connect(const SshOptions& o) {
  auto log = logger("ssh");
  auto st = std::make_unique<SshState>();
  st->session = ssh_new();
  if (!st->session) return fail(ENOMEM, "cannot create an SSH session");
  ssh_session s = st->session;
  st->callbacks.auth_function = passphrase_prompt;
  ssh_callbacks_init(&st->callbacks);
  ssh_set_callbacks(s, &st->callbacks);

  // Options: config, then our explicit fields, then -o and -J.
  HostKeyPolicy policy = HostKeyPolicy::Strict;
  TempFile jump_log;
  if (!o.jump.empty()) {
    char path[] = "/tmp/mrc-ssh-jump-XXXXXX";
    UniqueFd fd(::mkstemp(path));
    if (!fd) return fail_errno("create a temporary file");
    jump_log.path = path;
  }
  if (auto r = apply_options(s, o, policy, jump_log.path); !r) return tl::unexpected(r.error());
  std::string host = option_string(s, SSH_OPTIONS_HOST, o.host);
  unsigned port = 22;
  ssh_options_get_port(s, &port);

  // TCP connect and key exchange, bounded by the timeout (ConnectTimeout).
  log->info("connecting to {} port {}", host, port);
  if (ssh_connect(s) != SSH_OK) {
    std::string why = ssh_error(s);
    if (!o.jump.empty()) {
      std::string said = last_line(jump_log.path);
      return fail(EHOSTUNREACH, "cannot connect to " + host + " port " + std::to_string(port) + " through " + o.jump +
                                    ": " + (said.empty() ? why : said));
    }
    return fail(EHOSTUNREACH, "cannot connect to " + host + " port " + std::to_string(port) + ": " + why);
  }
  long io_timeout = k_io_timeout_s;
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &io_timeout);
  std::string user = option_string(s, SSH_OPTIONS_USER, "?");
  st->peer = user + "@" + host + ":" + std::to_string(port);

  // The host key, before any credential goes out.
  std::string label = port == 22 ? host : "[" + host + "]:" + std::to_string(port);
  std::string kh =
      option_string(s, SSH_OPTIONS_KNOWNHOSTS, o.known_hosts.empty() ? "~/.ssh/known_hosts" : o.known_hosts);
  if (auto r = verify_host_key(s, policy, label, kh); !r) return tl::unexpected(r.error());

  if (auto r = authenticate(s, o, user + "@" + host); !r) return tl::unexpected(r.error());
  log->info("connected to {}", st->peer);
  return std::make_unique<SshSession>(std::move(st));
}

std::string SshSession::peer() const { return m_state->peer; }

Result<std::pair<int, std::string>> SshSession::run_capture(const std::string& command) {
  assert(!m_state->pump.joinable() && "run_capture after exec_bridged");
  ssh_session s = m_state->session;
  ssh_channel ch = ssh_channel_new(s);
  if (!ch) return fail(ENOMEM, "cannot open a channel to " + m_state->peer + ": " + ssh_error(s));
  struct Free {
    ssh_channel c;
    ~Free() { ssh_channel_free(c); }
  } free_ch{ch};
  if (ssh_channel_open_session(ch) != SSH_OK)
    return fail(EIO, "cannot open a channel to " + m_state->peer + ": " + ssh_error(s));
  if (ssh_channel_request_exec(ch, command.c_str()) != SSH_OK)
    return fail(EIO, "cannot run a command on " + m_state->peer + ": " + ssh_error(s));

  std::string out;
  std::vector<char> buf(64 * 1024);
  bool out_eof = false, err_eof = false;
  while (!out_eof || !err_eof) {
    bool progress = false;
    int e = ssh_channel_read_nonblocking(ch, buf.data(), static_cast<uint32_t>(buf.size()), 1);
    if (e > 0) {
      copy_to_stderr(buf.data(), static_cast<size_t>(e));
      progress = true;
    } else if (e == SSH_EOF) {
      err_eof = true;
    } else if (e == SSH_ERROR) {
      return fail(EIO, "connection to " + m_state->peer + " failed: " + ssh_error(s));
    }
    int n = ssh_channel_read_nonblocking(ch, buf.data(), static_cast<uint32_t>(buf.size()), 0);
    if (n > 0) {
      out.append(buf.data(), static_cast<size_t>(n));
      progress = true;
    } else if (n == SSH_EOF) {
      out_eof = true;
    } else if (n == SSH_ERROR) {
      return fail(EIO, "connection to " + m_state->peer + " failed: " + ssh_error(s));
    }
    if (out.size() > k_max_capture)
      return fail(EFBIG, "the probe '" + command + "' printed more than 1 MiB on " + m_state->peer);
    if (progress || (out_eof && err_eof)) continue;
    // Nothing buffered: sleep until the server sends more (or our window adjusts can go out).
    pollfd p{ssh_get_fd(s), POLLIN, 0};
    if (ssh_get_status(s) & SSH_WRITE_PENDING) p.events |= POLLOUT;
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) return fail_errno("poll");
  }
  int status = ssh_channel_get_exit_status(ch);
  ssh_channel_close(ch);
  return std::pair<int, std::string>{status, std::move(out)};
}

}  // namespace mrc::launcher

// Result<T>: expected failures as values (tl::expected, aliased so it can
// become std::expected). An Error carries a raw errno and a human message.
// Not for programmer errors (assert) or abort-this-command errors (Fatal).
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace mrc {

/// An expected failure: `code` is a Linux errno (0 if none applies),
/// `message` names the cause for a human ("open /data/x: No such file").
struct Error {
  int code = 0;
  std::string message;
};

template <typename T>
using Result = tl::expected<T, Error>;

/// Builds the error side of a Result.
inline tl::unexpected<Error> fail(int code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}
/// Builds the error side of a Result from the current errno.
tl::unexpected<Error> fail_errno(const std::string& what);

/// Thrown to abort the current command; caught once in main, which prints
/// "PROG: <what()>" and exits 255 (like ssh).
struct Fatal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace mrc

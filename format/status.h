// Status and Result<T>: how every fallible call in format/ and store/ reports
// failure. No exception leaves those layers; a Status carries a code a caller
// can branch on and a message a person can act on ("corrupt header: data_size
// 4096 != rows*row_stride = 4104").
//
// Both are plain values: copyable, movable, not tied to any thread.

#ifndef EMBSTORE_FORMAT_STATUS_H_
#define EMBSTORE_FORMAT_STATUS_H_

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace embstore {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // the caller asked for something impossible
    kOutOfRange,       // an id or range outside the table
    kCorruption,       // bytes on disk contradict the format
    kNotSupported,     // a valid file this reader cannot handle (newer version, flag, dtype)
    kIOError,          // the operating system said no (open, write, fsync, rename, full disk)
    kNotFound,         // a named thing (a file, a shared table) does not exist
    kAlreadyExists,    // a name is taken and replacing was not asked for
    kCancelled,        // the caller asked the work to stop (store/core/cancel.h)
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status OutOfRange(std::string msg) { return Status(Code::kOutOfRange, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status NotSupported(std::string msg) { return Status(Code::kNotSupported, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status AlreadyExists(std::string msg) { return Status(Code::kAlreadyExists, std::move(msg)); }
  static Status Cancelled(std::string msg) { return Status(Code::kCancelled, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsOutOfRange() const { return code_ == Code::kOutOfRange; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  bool IsCancelled() const { return code_ == Code::kCancelled; }

  // "corruption: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(const std::string& context) const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Status::Code code);

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

#define EMB_CONCAT_INNER_(a, b) a##b
#define EMB_CONCAT_(a, b) EMB_CONCAT_INNER_(a, b)

#define EMB_RETURN_IF_ERROR(expr)             \
  do {                                        \
    ::embstore::Status emb_st_ = (expr);      \
    if (!emb_st_.ok()) return emb_st_;        \
  } while (0)

#define EMB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#define EMB_ASSIGN_OR_RETURN(lhs, expr) \
  EMB_ASSIGN_OR_RETURN_IMPL_(EMB_CONCAT_(emb_res_, __LINE__), lhs, expr)

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_STATUS_H_

// The core's single failure channel: typed exceptions.
//
// The core never calls abort/exit and never reports through Postgres. Glue
// entry points catch these and turn them into ereport(ERROR) with the SQLSTATE
// that src/pg/sqlstate.cc assigns to each kind.
#pragma once
#include "libravdb/core/fence.h"

#include <stdexcept>
#include <string>

namespace lrv::core {

enum class ErrorKind {
    InvalidParameter,           // a bad option or argument value (22023)
    InvalidTextRepresentation,  // malformed text input (22P02)
    InvalidBinaryRepresentation,// malformed binary input (22P03)
    DimensionMismatch,          // operands or column of different dimensions (22000)
    InvalidValue,               // NaN, infinity, empty vector (22000)
    NumericOutOfRange,          // overflow to infinity, out-of-range literal (22003)
    ProgramLimit,               // more dimensions than supported (54000)
    OutOfMemory,                // allocation failed (53200)
    IndexCorrupted,             // an index page failed a check (XX002)
    Interrupted,                // the interrupt flag was raised (57014)
    Internal,                   // a bug (XX000)
};

class Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, const std::string& message, std::string detail = {})
        : std::runtime_error(message), kind_(kind), detail_(std::move(detail)) {}
    ErrorKind kind() const noexcept { return kind_; }
    const std::string& detail() const noexcept { return detail_; }

  private:
    ErrorKind kind_;
    std::string detail_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message,
                              std::string detail = {}) {
    throw Error(kind, message, std::move(detail));
}

}  // namespace lrv::core

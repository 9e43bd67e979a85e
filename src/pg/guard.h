// Entry-point wrappers: no C++ exception crosses an extern "C" frame, and no
// longjmp crosses a live C++ destructor (DESIGN.md section 3).
//
// LRV_FUNCTION(name) defines a SQL-callable function whose body runs inside
// try/catch. A caught exception is copied into a fixed buffer on the stack, the
// catch block is left (so the exception object is destroyed), and only then is
// ereport(ERROR) raised. Bodies may ereport directly when they hold no C++
// object with a destructor (plain Postgres style).
//
// guard_pg(fn) is the opposite direction: it runs a Postgres call beneath core
// frames, turning an ereport into a PgError exception that carries the copied
// ErrorData, which the entry wrapper re-raises with ReThrowError so the
// original SQLSTATE (say 57014 for a cancel) survives.
#pragma once

// Standard and core headers first: the server's port.h redefines
// printf-family names that <string> uses.
#include <exception>
#include <utility>

#include "libravdb/core/error.h"

#include "pg.h"

namespace lrv::pg {

// A Postgres error captured beneath core frames.
class PgError {
  public:
    explicit PgError(ErrorData* data) : data_(data) {}
    ErrorData* data() const noexcept { return data_; }

  private:
    ErrorData* data_;
};

struct PendingError {
    bool set = false;
    int sqlstate = 0;
    ErrorData* pg = nullptr;  // when set, re-raised as is
    char message[1024];
    char detail[512];
};

int sqlstate_for(core::ErrorKind kind) noexcept;

// Call only from inside a catch block: classifies the active exception.
void capture_current_exception(PendingError* out) noexcept;

[[noreturn]] void raise_pending(const PendingError& err);

// Runs fn (which may ereport) and converts a Postgres error into PgError.
// A C++ exception fn throws (bad_alloc from a container, a core error) is
// caught inside PG_TRY too and rethrown only after PG_END_TRY: escaping
// between the two it would leave PG_exception_stack pointing into this dead
// frame, and the next ereport would jump there.
template <typename Fn>
auto guard_pg(Fn&& fn) -> decltype(fn()) {
    MemoryContext oldcxt = CurrentMemoryContext;
    // volatile: the values must survive siglongjmp back into this frame.
    ErrorData* volatile edata = nullptr;
    volatile bool failed = false;
    std::exception_ptr thrown;
    using R = decltype(fn());
    if constexpr (std::is_void_v<R>) {
        PG_TRY();
        {
            try {
                fn();
            } catch (...) {
                thrown = std::current_exception();
            }
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(oldcxt);
            edata = CopyErrorData();
            FlushErrorState();
            failed = true;
        }
        PG_END_TRY();
        if (failed) throw PgError(edata);
        if (thrown) std::rethrow_exception(thrown);
    } else {
        R result{};
        PG_TRY();
        {
            try {
                result = fn();
            } catch (...) {
                thrown = std::current_exception();
            }
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(oldcxt);
            edata = CopyErrorData();
            FlushErrorState();
            failed = true;
        }
        PG_END_TRY();
        if (failed) throw PgError(edata);
        if (thrown) std::rethrow_exception(thrown);
        return result;
    }
}

}  // namespace lrv::pg

namespace lrv::pg {

// C++ state that lives across Postgres calls (a scan, a build, an insert)
// belongs to a memory context: the object is deleted when the context is
// reset or deleted, after an ERROR too, so the code around it can ereport
// freely (DESIGN.md section 3, rule 5). Construction runs under the guard.
template <class T>
struct ContextOwned {
    T* object;
    MemoryContextCallback callback;
};

template <class T>
void delete_context_owned(void* arg) {
    auto* owned = static_cast<ContextOwned<T>*>(arg);
    delete owned->object;
    owned->object = nullptr;
}

}  // namespace lrv::pg

#define LRV_FUNCTION(fn)                                                     \
    static Datum fn##_body(FunctionCallInfo fcinfo);                         \
    extern "C" {                                                             \
    LRV_EXPORT Datum fn(PG_FUNCTION_ARGS);                                   \
    PG_FUNCTION_INFO_V1(fn);                                                 \
    }                                                                        \
    extern "C" LRV_EXPORT Datum fn(PG_FUNCTION_ARGS) {                       \
        lrv::pg::PendingError lrv_err_;                                      \
        Datum lrv_result_ = (Datum)0;                                        \
        try {                                                                \
            lrv_result_ = fn##_body(fcinfo);                                 \
        } catch (...) {                                                      \
            lrv::pg::capture_current_exception(&lrv_err_);                   \
        }                                                                    \
        if (lrv_err_.set) lrv::pg::raise_pending(lrv_err_);                  \
        return lrv_result_;                                                  \
    }                                                                        \
    static Datum fn##_body(FunctionCallInfo fcinfo)

// For callbacks that are not fmgr functions (AM callbacks, hooks): wraps a
// statement block the same way.
#define LRV_GUARDED(...)                                                     \
    do {                                                                     \
        lrv::pg::PendingError lrv_err_;                                      \
        try {                                                                \
            __VA_ARGS__;                                                     \
        } catch (...) {                                                      \
            lrv::pg::capture_current_exception(&lrv_err_);                   \
        }                                                                    \
        if (lrv_err_.set) lrv::pg::raise_pending(lrv_err_);                  \
    } while (0)

namespace lrv::pg {

template <class T, class... Args>
T* context_owned(MemoryContext context, Args&&... args) {
    auto* owned = static_cast<ContextOwned<T>*>(MemoryContextAllocZero(context, sizeof(ContextOwned<T>)));
    LRV_GUARDED(owned->object = new T(std::forward<Args>(args)...));
    owned->callback.func = delete_context_owned<T>;
    owned->callback.arg = owned;
    MemoryContextRegisterResetCallback(context, &owned->callback);
    return owned->object;
}

}  // namespace lrv::pg

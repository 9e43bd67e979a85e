#include "guard.h"

#include <cstdio>
#include <cstring>
#include <new>

namespace lrv::pg {

int sqlstate_for(core::ErrorKind kind) noexcept {
    using core::ErrorKind;
    switch (kind) {
        case ErrorKind::InvalidParameter:
            return ERRCODE_INVALID_PARAMETER_VALUE;
        case ErrorKind::InvalidTextRepresentation:
            return ERRCODE_INVALID_TEXT_REPRESENTATION;
        case ErrorKind::InvalidBinaryRepresentation:
            return ERRCODE_INVALID_BINARY_REPRESENTATION;
        case ErrorKind::DimensionMismatch:
        case ErrorKind::InvalidValue:
            return ERRCODE_DATA_EXCEPTION;
        case ErrorKind::NumericOutOfRange:
            return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
        case ErrorKind::ProgramLimit:
            return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
        case ErrorKind::OutOfMemory:
            return ERRCODE_OUT_OF_MEMORY;
        case ErrorKind::IndexCorrupted:
            return ERRCODE_INDEX_CORRUPTED;
        case ErrorKind::Interrupted:
            return ERRCODE_QUERY_CANCELED;
        case ErrorKind::Internal:
            return ERRCODE_INTERNAL_ERROR;
    }
    return ERRCODE_INTERNAL_ERROR;
}

static void copy_text(char* dst, std::size_t cap, const char* src) noexcept {
    snprintf(dst, cap, "%s", src ? src : "");
}

void capture_current_exception(PendingError* out) noexcept {
    out->set = true;
    out->pg = nullptr;
    out->message[0] = '\0';
    out->detail[0] = '\0';
    try {
        throw;
    } catch (const PgError& e) {
        out->pg = e.data();
    } catch (const core::Error& e) {
        out->sqlstate = sqlstate_for(e.kind());
        copy_text(out->message, sizeof out->message, e.what());
        copy_text(out->detail, sizeof out->detail, e.detail().c_str());
    } catch (const std::bad_alloc&) {
        out->sqlstate = ERRCODE_OUT_OF_MEMORY;
        copy_text(out->message, sizeof out->message, "out of memory");
    } catch (const std::exception& e) {
        out->sqlstate = ERRCODE_INTERNAL_ERROR;
        copy_text(out->message, sizeof out->message, e.what());
    } catch (...) {
        out->sqlstate = ERRCODE_INTERNAL_ERROR;
        copy_text(out->message, sizeof out->message, "unknown C++ exception in libravdb");
    }
}

void raise_pending(const PendingError& err) {
    if (err.pg != nullptr) ReThrowError(err.pg);
    if (err.detail[0] != '\0')
        ereport(ERROR, (errcode(err.sqlstate), errmsg("%s", err.message), errdetail("%s", err.detail)));
    ereport(ERROR, (errcode(err.sqlstate), errmsg("%s", err.message)));
    pg_unreachable();
}

}  // namespace lrv::pg

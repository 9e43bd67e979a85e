// Text form of a vector: "[1,2.5,-3]", the same syntax pgvector reads.
//
// Parsing lives in the core so that it can be fuzzed and unit-tested without a
// server. Formatting stays in the glue, which uses Postgres's own shortest
// round-trip float printer so output matches float4out byte for byte.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>

namespace lrv::core {

// An upper bound on the number of elements in `text` (commas + 1), so a caller
// can size the output buffer before parsing.
std::size_t vector_text_max_elements(const char* text) noexcept;

// Parses a NUL-terminated literal into out[0..capacity). Returns the number of
// elements. Throws Error: InvalidTextRepresentation for malformed text,
// NumericOutOfRange for a literal beyond float range, InvalidValue for NaN,
// infinity or an empty vector, ProgramLimit above kMaxDims. `type_name` goes
// into messages ("lvector").
std::size_t parse_vector_text(const char* text, float* out, std::size_t capacity,
                              const char* type_name);

// Throws InvalidValue when any element is NaN or infinite.
void check_finite(const float* x, std::size_t n, const char* type_name);

}  // namespace lrv::core

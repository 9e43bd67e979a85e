# Per-ISA compile flags for the core's sources, by file name (avx2.cc,
# quant_avx2.cc, avx512.cc, ...), shared by the unit tests and the fuzz
# targets. Keep them in step with LRV_AVX2_FLAGS / LRV_AVX512_FLAGS in the
# Makefile, which are what dispatch.cc checks the CPU for (the AVX2 level
# includes F16C). Only those files may be built with -m flags: the rest of the
# core must run on any x86-64.
set(LRV_X86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  set(LRV_X86 ON)
endif()

function(lrv_core_isa_flags)
  if(NOT LRV_X86)
    return()
  endif()
  foreach(src IN LISTS ARGN)
    get_filename_component(name "${src}" NAME)
    if(name MATCHES "(^|_)avx512\\.cc$")
      set_source_files_properties("${src}" PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx2;-mfma;-mf16c")
    elseif(name MATCHES "(^|_)avx2\\.cc$")
      set_source_files_properties("${src}" PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    endif()
  endforeach()
endfunction()

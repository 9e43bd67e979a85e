// The C++/Postgres border, enforced by the build.
//
// Every core header includes this file first. Core sources are compiled with
// LRV_CORE defined and without the server include path, so a Postgres header
// slipping into the core is a build error rather than a latent longjmp hazard.
#pragma once

#if defined(LRV_CORE) && defined(POSTGRES_H)
#error "src/core must not include Postgres headers (see DESIGN.md section 3)"
#endif

#if __cplusplus < 201703L
#error "the LibraVDB core needs C++17"
#endif

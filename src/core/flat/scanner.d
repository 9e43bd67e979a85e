src/core/flat/scanner.o: src/core/flat/scanner.cc \
 include/libravdb/core/flat/scanner.h include/libravdb/core/fence.h \
 include/libravdb/core/flat/format.h include/libravdb/core/distance.h \
 include/libravdb/core/quantizer.h include/libravdb/core/error.h
include/libravdb/core/flat/scanner.h:
include/libravdb/core/fence.h:
include/libravdb/core/flat/format.h:
include/libravdb/core/distance.h:
include/libravdb/core/quantizer.h:
include/libravdb/core/error.h:

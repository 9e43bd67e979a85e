src/core/quant/quantizer.o: src/core/quant/quantizer.cc \
 include/libravdb/core/quantizer.h include/libravdb/core/fence.h \
 include/libravdb/core/distance.h include/libravdb/core/quant_kernels.h
include/libravdb/core/quantizer.h:
include/libravdb/core/fence.h:
include/libravdb/core/distance.h:
include/libravdb/core/quant_kernels.h:

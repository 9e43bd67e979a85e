#!/bin/sh
# Proves that AVX code stays inside the per-ISA kernel objects of a core
# archive (DESIGN.md: the library targets baseline x86-64 and picks kernels at
# run time). Per-ISA objects are named by level: avx2.cc, quant_avx2.cc,
# avx512.cc, quant_avx512.cc, ... Two ways it could leak, both checked:
#  - a file without an ISA in its name is compiled with -m flags: its code
#    would then use VEX-encoded instructions (YMM registers, but also scalar
#    or XMM forms such as vfmadd231ss or an F16C vcvtph2ps, which name no YMM
#    register), or EVEX ones (ZMM, opmask or xmm16-31 registers);
#  - a per-ISA file defines a weak (COMDAT) function, e.g. an inline function
#    from a shared header: the linker may keep that copy for the whole library.
# Usage: check_isa_containment.sh liblrv_core.a   (OBJDUMP, NM override the tools)
set -eu
lib=$1
status=0
OBJDUMP=${OBJDUMP:-objdump}
NM=${NM:-nm}

# A member's ISA, from its name: avx512 objects may use ZMM and YMM, avx2
# objects YMM only, everything else neither.
"$OBJDUMP" -d --no-show-raw-insn "$lib" | awk '
    /file format/ {
        # GNU: "avx2.cc.o:", LLVM: "lib.a(avx2.cc.o):"
        member = $1; sub(/:$/, "", member); sub(/^.*\(/, "", member); sub(/\)$/, "", member)
        isa = "base"
        if (member ~ /(^|_)avx512\.cc\.o$/) isa = "avx512"
        else if (member ~ /(^|_)avx2\.cc\.o$/) isa = "avx2"
        next
    }
    /^[0-9a-f]+ <.*>:$/ { fn = $2; next }
    /%zmm|%k[0-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])/ && isa != "avx512" {
        bad[member " " fn " uses AVX-512"] = 1
    }
    # An instruction line is "addr:<TAB>mnemonic operands"; VEX and EVEX
    # mnemonics start with v (baseline code never emits verr/verw).
    isa == "base" && /^ *[0-9a-f]+:\t/ {
        split($0, field, "\t")
        if (field[2] ~ /^v/) bad[member " " fn " uses AVX"] = 1
    }
    END {
        for (m in bad) { print "ISA leak: " m; n++ }
        exit n > 0
    }' || status=1

# Weak code symbols in the per-ISA members.
weak=$("$NM" -A "$lib" 2>/dev/null | grep -E '(^|[:_])avx(2|512)\.cc\.o:' | awk '$(NF-1) == "W"' || true)
if [ -n "$weak" ]; then
    echo "weak (COMDAT) functions in per-ISA objects; the linker may pick them for the whole library:"
    echo "$weak"
    status=1
fi

[ $status -eq 0 ] && echo "AVX code is confined to the per-ISA objects of $lib"
exit $status

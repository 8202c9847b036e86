/* A test-only stand-in for Windows' bcryptprimitives.dll: Rust's std imports ProcessPrng from
 * it, and Wine 8 lacks it. tests/windows/run.sh builds it beside the suite's bprof.exe; it is
 * never part of what users install. ProcessPrng fills the buffer from advapi32's RtlGenRandom
 * (SystemFunction036), in pieces its ULONG length can hold. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID, ULONG);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}

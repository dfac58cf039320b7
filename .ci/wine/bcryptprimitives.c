/* A stand-in for Windows' bcryptprimitives.dll, which Rust's standard library imports
   (ProcessPrng) and which Debian's Wine 8.0 does not ship (Wine added it in 8.13).
   It fills the buffer from RtlGenRandom (advapi32!SystemFunction036). For tests under
   Wine only; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

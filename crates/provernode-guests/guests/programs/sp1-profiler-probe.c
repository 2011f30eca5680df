/* sp1-profiler-probe (SP1 only): registers one profiler symbol the way a
 * guest built with SP1's `profiling` feature does (INSERT_PROFILER_SYMBOLS,
 * a JSON map of address to [name, length]) and commits one byte. trace runs
 * it (the call has no effect on the run); the sp1 backend refuses it before
 * running, since SP1 6.10's x86-64 executor aborts on profiler calls. */
#include "pn_guest.h"

static const char SYMBOLS[] = "{\"2013265920\": [\"main\", \"64\"]}";

int main(void) {
    register uint64_t t0 __asm__("t0") = 0x41; /* INSERT_PROFILER_SYMBOLS */
    register uint64_t a0 __asm__("a0") = (uint64_t)(uintptr_t)SYMBOLS;
    register uint64_t a1 __asm__("a1") = sizeof SYMBOLS - 1;
    __asm__ volatile("ecall" : "+r"(t0) : "r"(a0), "r"(a1) : "memory");
    uint8_t done = 1;
    pn_commit(&done, 1);
    return PN_EXIT_OK;
}

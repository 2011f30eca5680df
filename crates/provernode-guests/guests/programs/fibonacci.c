/* fibonacci: input n (u32 LE, 4 bytes); public output n (u32 LE) then
 * fib(n) mod 2^64 (u64 LE), 12 bytes. fib(0) = 0, fib(1) = 1. */
#include "pn_guest.h"

int main(void) {
    size_t len;
    const uint8_t *in = pn_input(&len);
    if (len != 4) return PN_EXIT_INVALID_INPUT;
    uint32_t n = pn_load_u32le(in);
    uint64_t a = 0, b = 1;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t next = a + b;
        a = b;
        b = next;
    }
    uint8_t out[12];
    pn_store_u32le(out, n);
    pn_store_u64le(out + 4, a);
    pn_commit(out, sizeof out);
    return PN_EXIT_OK;
}

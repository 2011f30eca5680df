/* sp1-precompile-probe (SP1 only): calls one SP1 precompile on buffers the
 * input gives and commits the buffers afterwards, so that a test can run
 * the same call on trace and on SP1's own executor and compare.
 *
 * Input (one item, little-endian u64s): code, na, nb, arg, then na words
 * (buffer A) and nb words (buffer B). The precompile runs with a0 = A and
 * a1 = B (or `arg` when nb is 0); A then B are committed.
 */
#include "pn_guest.h"

static uint64_t load_u64(const uint8_t *p) {
    return (uint64_t)pn_load_u32le(p) | ((uint64_t)pn_load_u32le(p + 4) << 32);
}

int main(void) {
    size_t len;
    const uint8_t *in = pn_input(&len);
    if (len < 32) {
        return PN_EXIT_INVALID_INPUT;
    }
    uint64_t code = load_u64(in), na = load_u64(in + 8), nb = load_u64(in + 16), arg = load_u64(in + 24);
    if (na > 4096 || nb > 4096 || len != 32 + 8 * (na + nb)) {
        return PN_EXIT_INVALID_INPUT;
    }
    uint64_t *a = pn_alloc(na ? na * 8 : 8, 8);
    uint64_t *b = pn_alloc(nb ? nb * 8 : 8, 8);
    memcpy(a, in + 32, na * 8);
    memcpy(b, in + 32 + na * 8, nb * 8);
    register uint64_t t0 __asm__("t0") = code;
    register uint64_t a0 __asm__("a0") = (uint64_t)(uintptr_t)a;
    register uint64_t a1 __asm__("a1") = nb ? (uint64_t)(uintptr_t)b : arg;
    __asm__ volatile("ecall" : "+r"(t0), "+r"(a0), "+r"(a1) : : "memory");
    pn_commit(a, na * 8);
    pn_commit(b, nb * 8);
    return PN_EXIT_OK;
}

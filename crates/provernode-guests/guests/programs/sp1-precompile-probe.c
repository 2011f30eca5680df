/* sp1-precompile-probe (SP1 only): calls one SP1 precompile on buffers the
 * input gives and commits the buffers afterwards, so that a test can run
 * the same call on trace and on SP1's own executor and compare.
 *
 * Input (one item, little-endian u64s): code, na, nb, arg, repeat, then na
 * words (buffer A) and nb words (buffer B). The precompile runs `repeat`
 * times (a benchmark's knob; tests use 1) with a0 = A and a1 = B (or `arg`
 * when nb is 0); A then B are committed.
 *
 * A code of 0xffffffff000000NN calls hook NN instead: the first `arg` bytes
 * of A are written to fd NN (`repeat` times), and the first 8 items the
 * hook puts in front of the input stream are read back and committed (its length as a u64, then its
 * bytes padded to whole words); B is scratch space for them.
 */
#include "pn_guest.h"

static uint64_t load_u64(const uint8_t *p) {
    return (uint64_t)pn_load_u32le(p) | ((uint64_t)pn_load_u32le(p + 4) << 32);
}

static uint64_t ecall3(uint64_t code, uint64_t x, uint64_t y, uint64_t z) {
    register uint64_t t0 __asm__("t0") = code;
    register uint64_t a0 __asm__("a0") = x;
    register uint64_t a1 __asm__("a1") = y;
    register uint64_t a2 __asm__("a2") = z;
    __asm__ volatile("ecall" : "+r"(t0) : "r"(a0), "r"(a1), "r"(a2) : "memory");
    return t0;
}

static int hook(uint64_t fd, const uint64_t *a, uint64_t na, uint64_t len, uint64_t *b, uint64_t nb,
                uint64_t repeat) {
    if (len > na * 8) return PN_EXIT_INVALID_INPUT;
    for (uint64_t r = 0; r < repeat; r++) {
        ecall3(0x02 /* WRITE */, fd, (uint64_t)(uintptr_t)a, len);
    }
    for (int items = 0; items < 8; items++) {
        uint64_t n = ecall3(0xF0 /* HINT_LEN */, 0, 0, 0);
        if (n == UINT64_MAX) break;
        if (n > nb * 8) return PN_EXIT_INVALID_INPUT;
        if (n > 0) ecall3(0xF1 /* HINT_READ */, (uint64_t)(uintptr_t)b, n, 0);
        pn_commit(&n, 8);
        pn_commit(b, (n + 7) / 8 * 8);
    }
    return PN_EXIT_OK;
}

int main(void) {
    size_t len;
    const uint8_t *in = pn_input(&len);
    if (len < 40) {
        return PN_EXIT_INVALID_INPUT;
    }
    uint64_t code = load_u64(in), na = load_u64(in + 8), nb = load_u64(in + 16), arg = load_u64(in + 24);
    uint64_t repeat = load_u64(in + 32);
    if (na > 4096 || nb > 4096 || len != 40 + 8 * (na + nb)) {
        return PN_EXIT_INVALID_INPUT;
    }
    uint64_t *a = pn_alloc(na ? na * 8 : 8, 8);
    uint64_t *b = pn_alloc(nb ? nb * 8 : 8, 8);
    memcpy(a, in + 40, na * 8);
    memcpy(b, in + 40 + na * 8, nb * 8);
    if ((code >> 32) == 0xffffffffu) {
        return hook(code & 0xff, a, na, arg, b, nb, repeat);
    }
    for (uint64_t r = 0; r < repeat; r++) {
        ecall3(code, (uint64_t)(uintptr_t)a, nb ? (uint64_t)(uintptr_t)b : arg, 0);
    }
    pn_commit(a, na * 8);
    pn_commit(b, nb * 8);
    return PN_EXIT_OK;
}

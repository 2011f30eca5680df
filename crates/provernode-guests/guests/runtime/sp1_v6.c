/* SP1 runtime (sp1-sdk 6.x, RV64IM).
 *
 * ABI facts (see ARCHITECTURE.md, "Guest ABIs"):
 *  - ecall number in t0, arguments in a0..a2, result back in t0.
 *  - HALT=0x00 (a0 = exit code), WRITE=0x02 (a0 = fd, a1 = ptr, a2 = len),
 *    COMMIT=0x10 and COMMIT_DEFERRED_PROOFS=0x1A (a0 = word index, a1 = word),
 *    HINT_LEN=0xF0 (UINT64_MAX when no input is left), HINT_READ=0xF1
 *    (a0 = 8-aligned buffer, a1 = length; writes whole 8-byte words).
 *  - File descriptors are offset by 10: public values go to fd 13, not 3.
 *  - Before HALT the guest commits SHA-256 of all public values as 8 LE words,
 *    then the deferred-proofs digest as 8 words: zero unless the guest
 *    verified proofs (PN_VERIFY: VERIFY_SP1_PROOF=0x1B with a0 = vk digest,
 *    a1 = SHA-256 of the inner public values, each chained into the digest
 *    with the POSEIDON2=0x133 precompile).
 */
#include "pn_guest.h"
#include "pn_sha256.h"

#define SP1_HALT 0x00u
#define SP1_WRITE 0x02u
#define SP1_COMMIT 0x10u
#define SP1_COMMIT_DEFERRED_PROOFS 0x1Au
#define SP1_HINT_LEN 0xF0u
#define SP1_HINT_READ 0xF1u
#define FD_STDOUT 1u
#define FD_PUBLIC_VALUES 13u

static pn_sha256_ctx public_values_hash;
static int public_values_started;
static const uint8_t *input_data;
static size_t input_len;
static int input_loaded;
#ifdef PN_VERIFY
#define SP1_VERIFY_SP1_PROOF 0x1Bu
#define SP1_POSEIDON2 0x133u
static uint32_t deferred_proofs_digest[8];
#endif

/* Start of the hint region [2^37 - 2^34, 2^37): the heap must stay below it. */
uintptr_t pn_heap_limit(void) { return (uintptr_t)0x1C00000000ull; }

static uint64_t sp1_ecall(uint64_t nr, uint64_t x0, uint64_t x1, uint64_t x2) {
    register uint64_t t0 __asm__("t0") = nr;
    register uint64_t a0 __asm__("a0") = x0;
    register uint64_t a1 __asm__("a1") = x1;
    register uint64_t a2 __asm__("a2") = x2;
    __asm__ volatile("ecall" : "+r"(t0) : "r"(a0), "r"(a1), "r"(a2) : "memory");
    return t0;
}

const uint8_t *pn_input(size_t *len) {
    if (!input_loaded) {
        uint64_t n = sp1_ecall(SP1_HINT_LEN, 0, 0, 0);
        if (n == UINT64_MAX) n = 0;
        uint8_t *buf = (uint8_t *)pn_alloc((size_t)((n + 7) & ~(uint64_t)7), 8);
        if (n > 0) sp1_ecall(SP1_HINT_READ, (uint64_t)(uintptr_t)buf, n, 0);
        input_data = buf;
        input_len = (size_t)n;
        input_loaded = 1;
    }
    *len = input_len;
    return input_data;
}

void pn_commit(const void *data, size_t len) {
    if (!public_values_started) {
        pn_sha256_init(&public_values_hash);
        public_values_started = 1;
    }
    pn_sha256_update(&public_values_hash, data, len);
    if (len > 0) sp1_ecall(SP1_WRITE, FD_PUBLIC_VALUES, (uint64_t)(uintptr_t)data, len);
}

void pn_print(const char *msg) {
    size_t n = 0;
    while (msg[n]) n++;
    if (n > 0) sp1_ecall(SP1_WRITE, FD_STDOUT, (uint64_t)(uintptr_t)msg, n);
}

#ifdef PN_VERIFY
/* sp1_zkvm::lib::verify::verify_sp1_proof: the call, then
 * digest = Poseidon2 sponge(digest[0..8] || vk[0..8] || pv_digest bytes[0..32])
 * (sp1_primitives::hash_deferred_proof: padding-free, width 16, rate 8, six
 * permutations of a zero-started state whose first 8 elements each 8-element
 * chunk overwrites). */
void pn_verify(const uint8_t program_key[32], const uint8_t *output, size_t len) {
    uint64_t vk[4], pv[4];
    memcpy(vk, program_key, 32);
    pn_sha256(output, len, (uint8_t *)pv);
    sp1_ecall(SP1_VERIFY_SP1_PROOF, (uint64_t)(uintptr_t)vk, (uint64_t)(uintptr_t)pv, 0);

    uint32_t elements[48];
    memcpy(elements, deferred_proofs_digest, 32);
    memcpy(elements + 8, vk, 32);
    const uint8_t *pv_bytes = (const uint8_t *)pv;
    for (int i = 0; i < 32; i++) elements[16 + i] = pv_bytes[i];
    /* 16 field elements; in 64-bit words, two per word, low half first. */
    uint32_t state[16] __attribute__((aligned(8)));
    memset(state, 0, sizeof state);
    for (int chunk = 0; chunk < 6; chunk++) {
        memcpy(state, elements + 8 * chunk, 32);
        sp1_ecall(SP1_POSEIDON2, (uint64_t)(uintptr_t)state, 0, 0);
    }
    memcpy(deferred_proofs_digest, state, 32);
}
#endif

__attribute__((noreturn)) void pn_exit(uint32_t code) {
    if (!public_values_started) {
        pn_sha256_init(&public_values_hash);
        public_values_started = 1;
    }
    uint8_t digest[32];
    pn_sha256_final(&public_values_hash, digest);
    for (uint64_t i = 0; i < 8; i++) {
        const uint8_t *p = digest + 4 * i;
        sp1_ecall(SP1_COMMIT, i, pn_load_u32le(p), 0);
    }
#ifdef PN_VERIFY
    for (uint64_t i = 0; i < 8; i++) sp1_ecall(SP1_COMMIT_DEFERRED_PROOFS, i, deferred_proofs_digest[i], 0);
#else
    for (uint64_t i = 0; i < 8; i++) sp1_ecall(SP1_COMMIT_DEFERRED_PROOFS, i, 0, 0);
#endif
    sp1_ecall(SP1_HALT, code, 0, 0);
    for (;;) {
    }
}

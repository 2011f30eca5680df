/* risc0-accel-probe (RISC Zero only): makes one of the v1compat kernel's
 * calls that provernode's own runtime never makes, on data the input gives,
 * and commits what came back, so that a test can run it on trace and on
 * risc0's own executor and compare journals.
 *
 * Input: u32 op, then per op (all little-endian u32 words):
 *   1 BIGINT2 x[8] y[8] n[8]: the kernel's own bibc blobs through BIGINT2
 *     (modmul_256 when n != 0, else mul_256), then the BIGINT ecall on the
 *     same values; commits both results (8 words each; mul: 16 then 8).
 *   2 POSEIDON2 bits_count has_state state[8] out[8] in[...]: commits out,
 *     then state.
 *   3 INPUT: commits the 8 words of the input digest.
 *   4 PIPE n bytes[n]: makes a pipe, writes the bytes into it and reads
 *     them back; commits the two fds, the count read and the bytes.
 *   5 KECCAK lanes[50]: SYS_KECCAK permute; commits the status and state.
 *   6 PAUSE code: halts with PAUSE and that exit code (journal empty).
 *   7 ARGV index: asks for that argument (there are none).
 *   8 KECCAK n|forge<<16 lanes[50 n]: what risc0's guest library does with
 *     its keccak accelerator (`KeccakBatcher`): each state's SHA-256 claim
 *     transcript around a SYS_KECCAK permute, then a prove of the batch
 *     (with a claim flipped in one bit when `forge`), SYS_VERIFY_INTEGRITY2
 *     of that proof, and a halt whose output digest lists the assumption.
 *     Commits the permuted states, then the claim.
 */
#include "pn_guest.h"
#include "pn_risc0_bigint2_blobs.h"
#include "pn_sha256.h"

#define ECALL_HALT 0u
#define ECALL_SOFTWARE 2u
#define ECALL_INPUT 1u
#define ECALL_BIGINT 4u
#define ECALL_BIGINT2 6u
#define ECALL_POSEIDON2 7u

static const char SYS_PIPE_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_PIPE";
static const char SYS_KECCAK_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_KECCAK";
static const char SYS_READ_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_READ";
static const char SYS_WRITE_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_WRITE";
static const char SYS_ARGV_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_ARGV";
static const char SYS_VERIFY_INTEGRITY2_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_VERIFY_INTEGRITY2";

/* risc0-circuit-keccak 4.0.7-rc.1's KECCAK_CONTROL_ROOT. */
static const uint8_t KECCAK_CONTROL_ROOT[32] __attribute__((aligned(4))) = {
    0xab, 0xd9, 0x38, 0x66, 0xa6, 0x87, 0x85, 0x28, 0xf2, 0x9f, 0xfc, 0x6e, 0xa6, 0xd9, 0xe4, 0x28,
    0xcc, 0x9a, 0xd0, 0x20, 0xa5, 0x40, 0xdd, 0x11, 0xf1, 0xd4, 0x5e, 0x5e, 0x9b, 0xb6, 0xdb, 0x71};

static uint32_t words_in[4096];
static uint32_t scratch[1024];

/* One software call: (a0, a1) = host buffer and its words, a2 = name,
 * t6 = the kernel's call number; returns a0. */
static uint32_t software(uint32_t nr, const char *name, uint32_t *buf, uint32_t words,
                         uint32_t a3, uint32_t a4, uint32_t a5) {
    register uint32_t t0 __asm__("t0") = ECALL_SOFTWARE;
    register uint32_t t6 __asm__("t6") = nr;
    register uint32_t r0 __asm__("a0") = (uint32_t)(uintptr_t)buf;
    register uint32_t r1 __asm__("a1") = words;
    register uint32_t r2 __asm__("a2") = (uint32_t)(uintptr_t)name;
    register uint32_t r3 __asm__("a3") = a3;
    register uint32_t r4 __asm__("a4") = a4;
    register uint32_t r5 __asm__("a5") = a5;
    __asm__ volatile("ecall"
                     : "+r"(r0), "+r"(r1)
                     : "r"(t0), "r"(t6), "r"(r2), "r"(r3), "r"(r4), "r"(r5)
                     : "memory");
    return r0;
}

/* BIGINT2 as risc0's sys_bigint2_N: the blob's temporary space is taken
 * below sp for the call. */
static void bigint2(const uint32_t *blob, const uint32_t *a1, const uint32_t *a2,
                    const uint32_t *a3, const uint32_t *a4) {
    const uint32_t *nondet = blob + 4;
    const uint32_t *verify = nondet + blob[0];
    const uint32_t *consts = verify + blob[1];
    uint32_t temp = blob[3] << 2;
    register uint32_t t0 __asm__("t0") = ECALL_BIGINT2;
    register uint32_t t1 __asm__("t1") = (uint32_t)(uintptr_t)nondet;
    register uint32_t t2 __asm__("t2") = (uint32_t)(uintptr_t)verify;
    register uint32_t t3 __asm__("t3") = (uint32_t)(uintptr_t)consts;
    register uint32_t r0 __asm__("a0") = (uint32_t)(uintptr_t)blob;
    register uint32_t r1 __asm__("a1") = (uint32_t)(uintptr_t)a1;
    register uint32_t r2 __asm__("a2") = (uint32_t)(uintptr_t)a2;
    register uint32_t r3 __asm__("a3") = (uint32_t)(uintptr_t)a3;
    register uint32_t r4 __asm__("a4") = (uint32_t)(uintptr_t)a4;
    __asm__ volatile("sub sp, sp, %[temp]\n\tecall\n\tadd sp, sp, %[temp]"
                     :
                     : [temp] "r"(temp), "r"(t0), "r"(t1), "r"(t2), "r"(t3), "r"(r0), "r"(r1),
                       "r"(r2), "r"(r3), "r"(r4)
                     : "memory");
}

static void bigint(uint32_t *result, const uint32_t *x, const uint32_t *y, const uint32_t *n) {
    register uint32_t t0 __asm__("t0") = ECALL_BIGINT;
    register uint32_t r0 __asm__("a0") = (uint32_t)(uintptr_t)result;
    register uint32_t r1 __asm__("a1") = 0; /* multiply */
    register uint32_t r2 __asm__("a2") = (uint32_t)(uintptr_t)x;
    register uint32_t r3 __asm__("a3") = (uint32_t)(uintptr_t)y;
    register uint32_t r4 __asm__("a4") = (uint32_t)(uintptr_t)n;
    __asm__ volatile("ecall" : : "r"(t0), "r"(r0), "r"(r1), "r"(r2), "r"(r3), "r"(r4) : "memory");
}

static int probe_bigint2(const uint32_t *w, size_t words) {
    static uint32_t x[8], y[8], n[8], result[16], result1[8];
    if (words != 24) return PN_EXIT_INVALID_INPUT;
    memcpy(x, w, 32);
    memcpy(y, w + 8, 32);
    memcpy(n, w + 16, 32);
    int zero = 1;
    for (int i = 0; i < 8; i++) zero &= n[i] == 0;
    if (zero) {
        bigint2(PN_RISC0_MUL_256_BLOB, x, y, result, 0);
        pn_commit(result, 64);
    } else {
        bigint2(PN_RISC0_MODMUL_256_BLOB, x, y, n, result);
        pn_commit(result, 32);
    }
    bigint(result1, x, y, n);
    pn_commit(result1, 32);
    return PN_EXIT_OK;
}

static int probe_poseidon2(const uint32_t *w, size_t words) {
    static uint32_t state[8], out[8], in[2048];
    if (words < 18) return PN_EXIT_INVALID_INPUT;
    uint32_t bits_count = w[0], has_state = w[1];
    uint32_t count = bits_count & 0xffff, per_block = (bits_count & 0x80000000u) ? 16 : 8;
    if (words != 18 + (size_t)count * per_block || count * per_block > 2048) return PN_EXIT_INVALID_INPUT;
    memcpy(state, w + 2, 32);
    memcpy(out, w + 10, 32);
    memcpy(in, w + 18, (size_t)count * per_block * 4);
    register uint32_t t0 __asm__("t0") = ECALL_POSEIDON2;
    register uint32_t r0 __asm__("a0") = has_state ? (uint32_t)(uintptr_t)state / 4 : 0;
    register uint32_t r1 __asm__("a1") = (uint32_t)(uintptr_t)in / 4;
    register uint32_t r2 __asm__("a2") = (uint32_t)(uintptr_t)out / 4;
    register uint32_t r3 __asm__("a3") = bits_count;
    __asm__ volatile("ecall" : : "r"(t0), "r"(r0), "r"(r1), "r"(r2), "r"(r3) : "memory");
    pn_commit(out, 32);
    pn_commit(state, 32);
    return PN_EXIT_OK;
}

static int probe_input(void) {
    uint32_t digest[8];
    for (uint32_t i = 0; i < 8; i++) {
        register uint32_t t0 __asm__("t0") = ECALL_INPUT;
        register uint32_t r0 __asm__("a0") = i;
        __asm__ volatile("ecall" : "+r"(r0) : "r"(t0) : "memory");
        digest[i] = r0;
    }
    pn_commit(digest, 32);
    return PN_EXIT_OK;
}

static int probe_pipe(const uint8_t *data, size_t len) {
    static uint32_t fds[2], back[256];
    if (len < 4) return PN_EXIT_INVALID_INPUT;
    uint32_t n = pn_load_u32le(data);
    if (n > sizeof back || len != 4 + (size_t)n) return PN_EXIT_INVALID_INPUT;
    software(10, SYS_PIPE_NAME, fds, 2, 0, 0, 0);
    memcpy(scratch, data + 4, n);
    software(16, SYS_WRITE_NAME, 0, 0, fds[1], (uint32_t)(uintptr_t)scratch, n);
    uint32_t got = software(12, SYS_READ_NAME, back, n, fds[0], n, 0);
    pn_commit(fds, 8);
    pn_commit(&got, 4);
    pn_commit(back, got);
    return PN_EXIT_OK;
}

static int probe_keccak(const uint32_t *w, size_t words) {
    static uint32_t state[50], out[50];
    if (words != 50) return PN_EXIT_INVALID_INPUT;
    memcpy(state, w, 200);
    uint32_t status = software(7, SYS_KECCAK_NAME, out, 50, 0 /* permute */,
                               (uint32_t)(uintptr_t)state, 0);
    pn_commit(&status, 4);
    pn_commit(out, 200);
    return PN_EXIT_OK;
}

static void sha_compress1(uint32_t *state, const uint32_t *b1, const uint32_t *b2) {
    register uint32_t t0 __asm__("t0") = 3; /* SHA */
    register uint32_t r0 __asm__("a0") = (uint32_t)(uintptr_t)state;
    register uint32_t r1 __asm__("a1") = (uint32_t)(uintptr_t)state;
    register uint32_t r2 __asm__("a2") = (uint32_t)(uintptr_t)b1;
    register uint32_t r3 __asm__("a3") = (uint32_t)(uintptr_t)b2;
    register uint32_t r4 __asm__("a4") = 1;
    __asm__ volatile("ecall" : : "r"(t0), "r"(r0), "r"(r1), "r"(r2), "r"(r3), "r"(r4) : "memory");
}

/* The batcher's `sha_single_keccak`: a state's 200 bytes, zero-padded to
 * four blocks, compressed into the claim state. */
static void sha_single_keccak(uint32_t *claim_state, const uint32_t *lanes) {
    static uint32_t last[8], zeroes[8];
    for (int i = 0; i < 3; i++) sha_compress1(claim_state, lanes + 16 * i, lanes + 16 * i + 8);
    last[0] = lanes[48];
    last[1] = lanes[49];
    sha_compress1(claim_state, last, zeroes);
}

/* tagged_struct(tag, [a, b], []) */
static void tagged2(const char *tag, const uint8_t *a, const uint8_t *b, uint8_t out[32]) {
    uint8_t buf[98];
    size_t n = 0;
    while (tag[n]) n++;
    pn_sha256(tag, n, buf);
    memcpy(buf + 32, a, 32);
    memcpy(buf + 64, b, 32);
    buf[96] = 2;
    buf[97] = 0;
    pn_sha256(buf, sizeof buf, out);
}

static int probe_keccak_batch(const uint32_t *w, size_t words) {
    static uint32_t state[50], claim_state[8], claim[8], journal[8 * 50 + 8];
    static uint8_t assumption_buf[64] __attribute__((aligned(4)));
    if (words < 1) return PN_EXIT_INVALID_INPUT;
    uint32_t n = w[0] & 0xffff, forge = w[0] >> 16;
    if (n == 0 || n > 8 || words != 1 + 50 * (size_t)n) return PN_EXIT_INVALID_INPUT;
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (int i = 0; i < 8; i++) claim_state[i] = __builtin_bswap32(iv[i]);
    size_t journal_words = 0;
    for (uint32_t k = 0; k < n; k++) {
        memcpy(state, w + 1 + 50 * k, 200);
        sha_single_keccak(claim_state, state);
        software(7, SYS_KECCAK_NAME, state, 50, 0 /* permute */, (uint32_t)(uintptr_t)state, 0);
        sha_single_keccak(claim_state, state);
        memcpy(journal + journal_words, state, 200);
        journal_words += 50;
    }
    for (int i = 0; i < 8; i++) claim[i] = __builtin_bswap32(claim_state[i]);
    if (forge) claim[0] ^= 1;
    memcpy(journal + journal_words, claim, 32);
    journal_words += 8;
    pn_commit(journal, journal_words * 4);
    uint32_t proved = software(7, SYS_KECCAK_NAME, 0, 0, 1 /* prove */, (uint32_t)(uintptr_t)claim,
                               (uint32_t)(uintptr_t)KECCAK_CONTROL_ROOT);
    if (proved != 0) return 2;
    memcpy(assumption_buf, claim, 32);
    memcpy(assumption_buf + 32, KECCAK_CONTROL_ROOT, 32);
    software(15, SYS_VERIFY_INTEGRITY2_NAME, 0, 0, (uint32_t)(uintptr_t)assumption_buf, 64, 0);

    /* Halt with Output { H(journal), [Assumption { claim, control root }] }. */
    static uint32_t digest[8];
    uint8_t journal_digest[32], assumption[32], list[32], zero[32];
    memset(zero, 0, sizeof zero);
    pn_sha256(journal, journal_words * 4, journal_digest);
    tagged2("risc0.Assumption", (const uint8_t *)claim, KECCAK_CONTROL_ROOT, assumption);
    tagged2("risc0.Assumptions", assumption, zero, list);
    tagged2("risc0.Output", journal_digest, list, (uint8_t *)digest);
    register uint32_t t0 __asm__("t0") = ECALL_HALT;
    register uint32_t a0 __asm__("a0") = 0; /* TERMINATE, exit code 0 */
    register uint32_t a1 __asm__("a1") = (uint32_t)(uintptr_t)digest;
    __asm__ volatile("ecall" : : "r"(t0), "r"(a0), "r"(a1) : "memory");
    for (;;) {
    }
}

__attribute__((noreturn)) static void probe_pause(uint32_t code) {
    static uint32_t digest[8];
    uint8_t claim[98];
    pn_sha256("risc0.Output", 12, claim);
    pn_sha256("", 0, claim + 32);
    memset(claim + 64, 0, 32);
    claim[96] = 2;
    claim[97] = 0;
    pn_sha256(claim, sizeof claim, (uint8_t *)digest);
    register uint32_t t0 __asm__("t0") = ECALL_HALT;
    register uint32_t a0 __asm__("a0") = 1u /* PAUSE */ | ((code & 0xffu) << 8);
    register uint32_t a1 __asm__("a1") = (uint32_t)(uintptr_t)digest;
    __asm__ volatile("ecall" : : "r"(t0), "r"(a0), "r"(a1) : "memory");
    for (;;) {
    }
}

int main(void) {
    size_t len;
    const uint8_t *in = pn_input(&len);
    if (len < 4 || len % 4 != 0 || len > sizeof words_in) return PN_EXIT_INVALID_INPUT;
    memcpy(words_in, in, len);
    const uint32_t *w = words_in + 1;
    size_t words = len / 4 - 1;
    switch (words_in[0]) {
    case 1: return probe_bigint2(w, words);
    case 2: return probe_poseidon2(w, words);
    case 3: return probe_input();
    case 4: return probe_pipe(in + 4, len - 4);
    case 5: return probe_keccak(w, words);
    case 6: probe_pause(words == 1 ? w[0] : 0);
    case 7: software(2, SYS_ARGV_NAME, scratch, 16, words == 1 ? w[0] : 0, 0, 0); return PN_EXIT_OK;
    case 8: return probe_keccak_batch(w, words);
    default: return PN_EXIT_INVALID_INPUT;
    }
}

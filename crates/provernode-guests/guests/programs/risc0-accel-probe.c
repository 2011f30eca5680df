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
    default: return PN_EXIT_INVALID_INPUT;
    }
}

/* RISC Zero runtime (risc0-zkvm 3.x, "v1compat" kernel, RV32IM).
 *
 * ABI facts (see ARCHITECTURE.md, "Guest ABIs"):
 *  - ecall selector in t0: HALT=0, SOFTWARE=2.
 *  - SOFTWARE: a0/a1 = word buffer / word count the host fills, a2 = pointer to
 *    the NUL-terminated call name the host dispatches on, a3.. = arguments;
 *    returns (a0, a1). t6 carries the call number the v1compat kernel expects.
 *  - SYS_READ(fd=a3, nbytes=a4): fills the word buffer, returns bytes read in a0.
 *  - SYS_WRITE(fd=a3, ptr=a4, len=a5): fd 3 is the journal.
 *  - HALT: a0 = TERMINATE | exit_code << 8, a1 = pointer to the output digest
 *    SHA256(SHA256("risc0.Output") || SHA256(journal) || assumptions || u16le(2)),
 *    assumptions 0^32 unless the guest verified proofs (PN_VERIFY).
 *  - SYS_VERIFY_INTEGRITY (PN_VERIFY only): a3 = claim digest || control root
 *    (0^32: this run's), a4 = 64; the host must hold a receipt for the claim.
 */
#include "pn_guest.h"
#include "pn_sha256.h"

#define ECALL_HALT 0u
#define ECALL_SOFTWARE 2u
#define HALT_TERMINATE 0u
#define NR_READ 12u
#define NR_WRITE 16u
#define FD_STDIN 0u
#define FD_STDOUT 1u
#define FD_JOURNAL 3u
/* The kernel moves at most 1 KiB per software call. */
#define MAX_IO_BYTES 1024u

static const char SYS_READ_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_READ";
static const char SYS_WRITE_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_WRITE";

static pn_sha256_ctx journal_hash;
static int journal_started;
static const uint8_t *input_data;
static size_t input_len;
static int input_loaded;
static uint32_t read_scratch[MAX_IO_BYTES / 4];
static uint32_t output_digest[8];
#ifdef PN_VERIFY
#define NR_VERIFY_INTEGRITY 14u
static const char SYS_VERIFY_INTEGRITY_NAME[] = "risc0_zkvm_platform::syscall::nr::SYS_VERIFY_INTEGRITY";
/* risc0's Assumptions list digest: 0^32 while empty, each verified claim
 * pushed at the head. */
static uint8_t assumptions_digest[32];
#endif

uintptr_t pn_heap_limit(void) { return 0xC0000000u; }

static uint32_t sys_read(uint32_t fd, uint32_t *buf, uint32_t nbytes) {
    register uint32_t t0 __asm__("t0") = ECALL_SOFTWARE;
    register uint32_t t6 __asm__("t6") = NR_READ;
    register uint32_t a0 __asm__("a0") = (uint32_t)(uintptr_t)buf;
    register uint32_t a1 __asm__("a1") = nbytes / 4;
    register uint32_t a2 __asm__("a2") = (uint32_t)(uintptr_t)SYS_READ_NAME;
    register uint32_t a3 __asm__("a3") = fd;
    register uint32_t a4 __asm__("a4") = nbytes;
    __asm__ volatile("ecall"
                     : "+r"(a0), "+r"(a1)
                     : "r"(t0), "r"(t6), "r"(a2), "r"(a3), "r"(a4)
                     : "memory");
    return a0;
}

static void sys_write(uint32_t fd, const void *data, uint32_t len) {
    register uint32_t t0 __asm__("t0") = ECALL_SOFTWARE;
    register uint32_t t6 __asm__("t6") = NR_WRITE;
    register uint32_t a0 __asm__("a0") = 0;
    register uint32_t a1 __asm__("a1") = 0;
    register uint32_t a2 __asm__("a2") = (uint32_t)(uintptr_t)SYS_WRITE_NAME;
    register uint32_t a3 __asm__("a3") = fd;
    register uint32_t a4 __asm__("a4") = (uint32_t)(uintptr_t)data;
    register uint32_t a5 __asm__("a5") = len;
    __asm__ volatile("ecall"
                     : "+r"(a0), "+r"(a1)
                     : "r"(t0), "r"(t6), "r"(a2), "r"(a3), "r"(a4), "r"(a5)
                     : "memory");
}

static void write_chunked(uint32_t fd, const uint8_t *data, size_t len) {
    while (len > 0) {
        uint32_t n = len > MAX_IO_BYTES ? MAX_IO_BYTES : (uint32_t)len;
        sys_write(fd, data, n);
        data += n;
        len -= n;
    }
}

const uint8_t *pn_input(size_t *len) {
    if (!input_loaded) {
        /* Chunks land contiguously: nothing else allocates while we read. */
        uint8_t *start = (uint8_t *)pn_alloc(0, 8);
        size_t total = 0;
        for (;;) {
            uint32_t n = sys_read(FD_STDIN, read_scratch, MAX_IO_BYTES);
            if (n == 0) break;
            if (n > MAX_IO_BYTES) n = MAX_IO_BYTES;
            uint8_t *dst = (uint8_t *)pn_alloc(n, 1);
            memcpy(dst, read_scratch, n);
            total += n;
        }
        input_data = start;
        input_len = total;
        input_loaded = 1;
    }
    *len = input_len;
    return input_data;
}

void pn_commit(const void *data, size_t len) {
    if (!journal_started) {
        pn_sha256_init(&journal_hash);
        journal_started = 1;
    }
    pn_sha256_update(&journal_hash, data, len);
    write_chunked(FD_JOURNAL, (const uint8_t *)data, len);
}

void pn_print(const char *msg) {
    size_t n = 0;
    while (msg[n]) n++;
    write_chunked(FD_STDOUT, (const uint8_t *)msg, n);
}

#ifdef PN_VERIFY
/* risc0's tagged_struct: SHA256(SHA256(tag) || downs || data as u32le || u16le(#downs)). */
static void tagged_struct(const char *tag, const uint8_t *downs, uint32_t n_downs, const uint32_t *data,
                          uint32_t n_data, uint8_t out[32]) {
    size_t tag_len = 0;
    while (tag[tag_len]) tag_len++;
    uint8_t tag_digest[32];
    pn_sha256(tag, tag_len, tag_digest);
    pn_sha256_ctx ctx;
    pn_sha256_init(&ctx);
    pn_sha256_update(&ctx, tag_digest, 32);
    pn_sha256_update(&ctx, downs, 32u * n_downs);
    for (uint32_t i = 0; i < n_data; i++) {
        uint8_t word[4];
        pn_store_u32le(word, data[i]);
        pn_sha256_update(&ctx, word, 4);
    }
    uint8_t count[2] = {(uint8_t)n_downs, (uint8_t)(n_downs >> 8)};
    pn_sha256_update(&ctx, count, 2);
    pn_sha256_final(&ctx, out);
}

static void sys_verify_integrity(const uint32_t claim_and_root[16]) {
    register uint32_t t0 __asm__("t0") = ECALL_SOFTWARE;
    register uint32_t t6 __asm__("t6") = NR_VERIFY_INTEGRITY;
    register uint32_t a0 __asm__("a0") = 0;
    register uint32_t a1 __asm__("a1") = 0;
    register uint32_t a2 __asm__("a2") = (uint32_t)(uintptr_t)SYS_VERIFY_INTEGRITY_NAME;
    register uint32_t a3 __asm__("a3") = (uint32_t)(uintptr_t)claim_and_root;
    register uint32_t a4 __asm__("a4") = 64;
    __asm__ volatile("ecall"
                     : "+r"(a0), "+r"(a1)
                     : "r"(t0), "r"(t6), "r"(a2), "r"(a3), "r"(a4)
                     : "memory");
    if (a0 != 0) {
        pn_print("sys_verify_integrity returned error result\n");
        pn_exit(4);
    }
}

/* env::verify(image_id, journal): the claim of a run of `program_key` that
 * halted with exit 0, committed `output` and has no assumptions left. */
void pn_verify(const uint8_t program_key[32], const uint8_t *output, size_t len) {
    static const uint32_t zero_words[2] = {0, 0};
    uint8_t downs[4 * 32];
    uint8_t output_claim[32], post_state[32];
    uint32_t claim_and_root[16];
    uint8_t *claim = (uint8_t *)claim_and_root;

    pn_sha256(output, len, downs);
    memset(downs + 32, 0, 32);
    tagged_struct("risc0.Output", downs, 2, zero_words, 0, output_claim);
    memset(downs, 0, 32);
    tagged_struct("risc0.SystemState", downs, 1, zero_words, 1, post_state);
    memset(downs, 0, 32);                /* input: none */
    memcpy(downs + 32, program_key, 32); /* pre: the image id */
    memcpy(downs + 64, post_state, 32);
    memcpy(downs + 96, output_claim, 32);
    tagged_struct("risc0.ReceiptClaim", downs, 4, zero_words, 2, claim); /* Halted(0) */
    memset(claim + 32, 0, 32);                                           /* this run's control root */
    sys_verify_integrity(claim_and_root);

    memcpy(downs, claim, 32);
    memset(downs + 32, 0, 32);
    uint8_t assumption[32];
    tagged_struct("risc0.Assumption", downs, 2, zero_words, 0, assumption);
    memcpy(downs, assumption, 32);
    memcpy(downs + 32, assumptions_digest, 32);
    tagged_struct("risc0.Assumptions", downs, 2, zero_words, 0, assumptions_digest);
}
#endif

__attribute__((noreturn)) void pn_exit(uint32_t code) {
    if (!journal_started) {
        pn_sha256_init(&journal_hash);
        journal_started = 1;
    }
    uint8_t claim[98];
    pn_sha256("risc0.Output", 12, claim);
    pn_sha256_final(&journal_hash, claim + 32);
#ifdef PN_VERIFY
    memcpy(claim + 64, assumptions_digest, 32);
#else
    memset(claim + 64, 0, 32); /* no assumptions */
#endif
    claim[96] = 2;             /* u16le: two down-digests */
    claim[97] = 0;
    uint8_t digest[32];
    pn_sha256(claim, sizeof claim, digest);
    memcpy(output_digest, digest, sizeof digest);

    register uint32_t t0 __asm__("t0") = ECALL_HALT;
    register uint32_t a0 __asm__("a0") = HALT_TERMINATE | ((code & 0xffu) << 8);
    register uint32_t a1 __asm__("a1") = (uint32_t)(uintptr_t)output_digest;
    __asm__ volatile("ecall" : : "r"(t0), "r"(a0), "r"(a1) : "memory");
    for (;;) {
    }
}

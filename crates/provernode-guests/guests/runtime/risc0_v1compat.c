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
 *    SHA256(SHA256("risc0.Output") || SHA256(journal) || 0^32 || u16le(2)).
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

__attribute__((noreturn)) void pn_exit(uint32_t code) {
    if (!journal_started) {
        pn_sha256_init(&journal_hash);
        journal_started = 1;
    }
    uint8_t claim[98];
    pn_sha256("risc0.Output", 12, claim);
    pn_sha256_final(&journal_hash, claim + 32);
    memset(claim + 64, 0, 32); /* no assumptions */
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

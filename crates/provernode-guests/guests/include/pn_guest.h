/* provernode guest runtime: the whole interface a guest program sees.
 *
 * The same guest source is linked against one runtime per zkVM ABI
 * (runtime/risc0_v1compat.c, runtime/sp1_v6.c). A guest defines
 * `int main(void)`; its return value becomes the exit code.
 */
#ifndef PN_GUEST_H
#define PN_GUEST_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes with a meaning the host understands. Anything else is a
 * guest-defined failure. */
#define PN_EXIT_OK 0
#define PN_EXIT_INVALID_INPUT 1

/* The whole input, read once on first call (later calls return the same
 * buffer). Never NULL; *len may be 0. */
const uint8_t *pn_input(size_t *len);

/* Append bytes to the public output (RISC Zero journal, SP1 public values). */
void pn_commit(const void *data, size_t len);

/* Write a NUL-terminated message to the host's stdout (not committed). */
void pn_print(const char *msg);

/* Commit the output digest and halt. Never returns. */
__attribute__((noreturn)) void pn_exit(uint32_t code);

/* Verifies a proof, supplied by the host beside the input, that the program
 * the zkVM knows as `program_key` (RISC Zero image id; SP1 vk digest as 8
 * little-endian u32 words) ran to exit 0 and committed `output`. It makes
 * the zkVM's own verify call (RISC Zero sys_verify_integrity, SP1
 * VERIFY_SP1_PROOF) and adds the proof to what the halt commits (RISC
 * Zero's assumptions list, SP1's deferred-proofs digest): the proof of this
 * run holds only if the verified proof does. Only runtimes compiled with
 * PN_VERIFY have it, so guests that verify nothing keep their halt. */
void pn_verify(const uint8_t program_key[32], const uint8_t *output, size_t len);

/* Bump allocator over the memory above the image; never freed. Halts the
 * guest if the ABI's address space is exhausted. */
void *pn_alloc(size_t size, size_t align);

/* Little-endian helpers: guests never cast unaligned pointers. */
static inline uint32_t pn_load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline void pn_store_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void pn_store_u64le(uint8_t *p, uint64_t v) {
    pn_store_u32le(p, (uint32_t)v);
    pn_store_u32le(p + 4, (uint32_t)(v >> 32));
}

/* Freestanding replacements the compiler may call. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif

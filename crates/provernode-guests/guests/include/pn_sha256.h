/* Portable software SHA-256 (FIPS 180-4), used by guests and by both runtimes
 * to commit their output digest. */
#ifndef PN_SHA256_H
#define PN_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t total_len;
    uint8_t block[64];
    size_t block_len;
} pn_sha256_ctx;

void pn_sha256_init(pn_sha256_ctx *ctx);
void pn_sha256_update(pn_sha256_ctx *ctx, const void *data, size_t len);
void pn_sha256_final(pn_sha256_ctx *ctx, uint8_t out[32]);
void pn_sha256(const void *data, size_t len, uint8_t out[32]);

#endif

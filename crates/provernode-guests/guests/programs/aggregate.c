/* aggregate: one proof that verifies many.
 *
 * Input: u32le N (1..1024), then N claims, each the 32-byte program key as
 * the zkVM knows it (RISC Zero image id, SP1 vk digest) and u32le length +
 * the public output that program committed. For each claim the guest makes
 * the zkVM's verify call (pn_verify): its own proof holds only if a proof of
 * every claim does.
 *
 * Public output: u32le N, the Merkle root over the claims, then per claim
 * the program key and SHA-256 of its output. Leaf = SHA-256(0x00 || key ||
 * SHA-256(output)), node = SHA-256(0x01 || left || right), pairs left to
 * right, an odd last node carried up (provernode_core::aggregate).
 *
 * Exit 1 on malformed input. */
#include "pn_guest.h"
#include "pn_sha256.h"

#define MAX_CLAIMS 1024u

static void hash_tagged(uint8_t tag, const uint8_t a[32], const uint8_t b[32], uint8_t out[32]) {
    pn_sha256_ctx ctx;
    pn_sha256_init(&ctx);
    pn_sha256_update(&ctx, &tag, 1);
    pn_sha256_update(&ctx, a, 32);
    pn_sha256_update(&ctx, b, 32);
    pn_sha256_final(&ctx, out);
}

int main(void) {
    size_t len;
    const uint8_t *in = pn_input(&len);
    if (len < 4) return PN_EXIT_INVALID_INPUT;
    uint32_t n = pn_load_u32le(in);
    if (n == 0 || n > MAX_CLAIMS) return PN_EXIT_INVALID_INPUT;
    size_t at = 4;
    /* claims[i] = key || SHA-256(output); level = the tree's current level */
    uint8_t *claims = (uint8_t *)pn_alloc(64u * n, 4);
    uint8_t *level = (uint8_t *)pn_alloc(32u * n, 4);
    for (uint32_t i = 0; i < n; i++) {
        if (len - at < 36) return PN_EXIT_INVALID_INPUT;
        const uint8_t *key = in + at;
        uint32_t out_len = pn_load_u32le(in + at + 32);
        at += 36;
        if (len - at < out_len) return PN_EXIT_INVALID_INPUT;
        const uint8_t *output = in + at;
        at += out_len;
        pn_verify(key, output, out_len);
        memcpy(claims + 64u * i, key, 32);
        pn_sha256(output, out_len, claims + 64u * i + 32);
        hash_tagged(0, claims + 64u * i, claims + 64u * i + 32, level + 32u * i);
    }
    if (at != len) return PN_EXIT_INVALID_INPUT;
    for (uint32_t width = n; width > 1; width = (width + 1) / 2) {
        for (uint32_t i = 0; i < width / 2; i++)
            hash_tagged(1, level + 64u * i, level + 64u * i + 32, level + 32u * i);
        if (width % 2) memmove(level + 32u * (width / 2), level + 32u * (width - 1), 32);
    }
    uint8_t count[4];
    pn_store_u32le(count, n);
    pn_commit(count, 4);
    pn_commit(level, 32);
    pn_commit(claims, 64u * n);
    return PN_EXIT_OK;
}

/* sha256-chain: input a 32-byte seed then a round count (u32 LE), 36 bytes;
 * public output the 32-byte digest after that many rounds of d = SHA256(d),
 * starting from d = seed (0 rounds commits the seed). */
#include "pn_guest.h"
#include "pn_sha256.h"

int main(void) {
    size_t len;
    const uint8_t *in = pn_input(&len);
    if (len != 36) return PN_EXIT_INVALID_INPUT;
    uint8_t digest[32];
    memcpy(digest, in, 32);
    uint32_t rounds = pn_load_u32le(in + 32);
    for (uint32_t i = 0; i < rounds; i++) pn_sha256(digest, 32, digest);
    pn_commit(digest, sizeof digest);
    return PN_EXIT_OK;
}

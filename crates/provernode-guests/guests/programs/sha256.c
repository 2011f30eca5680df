/* sha256: input any bytes; public output their 32-byte SHA-256 digest. */
#include "pn_guest.h"
#include "pn_sha256.h"

int main(void) {
    size_t len;
    const uint8_t *in = pn_input(&len);
    uint8_t digest[32];
    pn_sha256(in, len, digest);
    pn_commit(digest, sizeof digest);
    return PN_EXIT_OK;
}

/* Native (host) harness for the guest sources: the speed limit an
 * interpreter is measured against (crates/provernode-backend-trace/benches).
 *
 *   cc -O2 -Iinclude -Dmain=guest_main -c programs/X.c -o X.o
 *   cc -O2 -Iinclude native/harness.c runtime/sha256.c X.o
 *   ./a.out INPUT_HEX ITERATIONS   ->  "<ns per run> <public output hex>"
 */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pn_guest.h"

int guest_main(void);

static uint8_t *input_bytes;
static size_t input_len;
static uint8_t output[4096];
static size_t output_len;

const uint8_t *pn_input(size_t *len) {
    *len = input_len;
    return input_bytes;
}

void pn_commit(const void *data, size_t len) {
    if (output_len + len > sizeof output) abort();
    memcpy(output + output_len, data, len);
    output_len += len;
}

void pn_print(const char *msg) { fputs(msg, stderr); }

void pn_exit(uint32_t code) { exit((int)code); }

void *pn_alloc(size_t size, size_t align) {
    void *p = NULL;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (posix_memalign(&p, align, size ? size : 1) != 0) abort();
    return p;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT_HEX ITERATIONS\n", argv[0]);
        return 2;
    }
    size_t hex_len = strlen(argv[1]);
    input_len = hex_len / 2;
    input_bytes = malloc(input_len + 1);
    for (size_t i = 0; i < input_len; i++) {
        unsigned v;
        if (sscanf(argv[1] + 2 * i, "%2x", &v) != 1) return 2;
        input_bytes[i] = (uint8_t)v;
    }
    long iterations = atol(argv[2]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iterations; i++) {
        output_len = 0;
        if (guest_main() != 0) return 3;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%.1f ", ns / (double)iterations);
    for (size_t i = 0; i < output_len; i++) printf("%02x", output[i]);
    printf("\n");
    return 0;
}

/* Pieces shared by every ABI runtime: freestanding libc replacements, the bump
 * allocator and the C entry point called by each ABI's _start. */
#include "pn_guest.h"

extern char _end[];          /* first byte past the image (linker script) */
extern uintptr_t pn_heap_limit(void); /* one past the last usable heap byte, per ABI */
int main(void);

static uintptr_t heap_next;

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

void *pn_alloc(size_t size, size_t align) {
    if (heap_next == 0) heap_next = (uintptr_t)_end;
    if (align == 0) align = 1;
    uintptr_t start = (heap_next + (align - 1)) & ~(uintptr_t)(align - 1);
    uintptr_t limit = pn_heap_limit();
    if (start < heap_next || start > limit || size > limit - start) {
        pn_print("pn_alloc: out of guest memory\n");
        pn_exit(3);
    }
    heap_next = start + size;
    return (void *)start;
}

__attribute__((noreturn)) void pn_entry(void) {
    pn_exit((uint32_t)main());
}

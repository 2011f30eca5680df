/* memhog (test guest): touches one new 4 KiB page after another until the
 * machine runs out of memory. Exercises memory limits. */
#include "pn_guest.h"

int main(void) {
    for (;;) {
        volatile uint8_t *page = (volatile uint8_t *)pn_alloc(4096, 4096);
        page[0] = 1;
    }
}

/* spin (test guest): never halts. Exercises cycle limits and wall-clock
 * timeouts. */
#include "pn_guest.h"

int main(void) {
    volatile uint32_t counter = 0;
    for (;;) counter++;
}

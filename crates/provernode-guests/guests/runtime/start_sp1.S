/* Entry point for the sp1 ABI: global pointer, stack, then C. */
    .section .text._start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    li sp, 0x78000000
    call pn_entry
1:  j 1b

/* Entry point for the risc0 ABI: global pointer, stack, then C. */
    .section .text._start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    li sp, 0x00200400
    call pn_entry
1:  j 1b

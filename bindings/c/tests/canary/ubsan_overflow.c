/*
 * Must FAIL under -fsanitize=undefined -fno-sanitize-recover=all: proves the
 * UBSan build is instrumented. Overflows a signed int (undefined behaviour);
 * the operand comes from argc so the compiler cannot fold it.
 */
#include <limits.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argv;
    volatile int x = INT_MAX;
    int y = x + argc; /* INT_MAX + 1 when run without arguments */
    printf("signed overflow NOT detected (%d)\n", y);
    return 0;
}

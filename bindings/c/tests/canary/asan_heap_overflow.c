/*
 * Must FAIL under -fsanitize=address: proves the ASan build is instrumented.
 * Writes one byte past an 8-byte heap block; the index comes from argc so
 * the compiler cannot see the overflow, and through a volatile pointer so it
 * cannot drop the store as dead (the block is freed right after).
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    (void)argv;
    volatile size_t index = (size_t)argc + 7; /* 8 when run without arguments */
    char *p = malloc(8);
    if (p == NULL) {
        return 2;
    }
    volatile char *q = p;
    q[index] = 'x';
    printf("heap overflow NOT detected\n");
    free(p);
    return 0;
}

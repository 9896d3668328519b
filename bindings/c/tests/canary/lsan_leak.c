/*
 * Must FAIL under -fsanitize=address (LeakSanitizer, on by default on
 * x86_64 Linux): proves that leak checking runs in the sanitizer builds.
 * Drops the only pointer to a heap block; the volatile pointer keeps the
 * compiler from removing the allocation.
 */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

int main(void)
{
    sink = malloc(64);
    sink = NULL;
    printf("leak NOT detected\n");
    return 0;
}

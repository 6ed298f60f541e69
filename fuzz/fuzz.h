/* fuzz.h: the entry points libFuzzer calls: once before the first input
 * (optional), and with each input (every target defines it). */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#endif

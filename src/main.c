#include <stdio.h>
int main(void) { puts("awgproxy"); return 0; }

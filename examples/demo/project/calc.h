/* A tiny calculator library: the project codeassist fixes in `make demo`. */
#ifndef CALC_H
#define CALC_H
int add(int a, int b);
int sub(int a, int b);
#endif

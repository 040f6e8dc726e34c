/* YAML 1.2 core-schema resolution of plain (unquoted, untagged) scalars. */
#ifndef CODEASSIST_YAML_SCALAR_H
#define CODEASSIST_YAML_SCALAR_H

#include <stddef.h>

enum scalar_kind { SCALAR_STRING, SCALAR_NULL, SCALAR_BOOL, SCALAR_INT, SCALAR_FLOAT };

/* Classifies s[0..len); sets *number for INT/FLOAT and *boolean for BOOL. */
enum scalar_kind yaml_resolve_plain(const char *s, size_t len, double *number, int *boolean);

#endif

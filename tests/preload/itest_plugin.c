// itest_plugin.c — a tiny shared library that integration.c's `dlopen`
// subcommand loads and unloads repeatedly. It has what makes ld.so work for a
// real library: a writable data segment, a RELRO table of pointers (so ld.so
// mprotects it read-only after relocation), a thread-local variable (dynamic
// TLS, allocated with malloc on first use in each thread) and a constructor
// and destructor that allocate and free.
#include <stdlib.h>
#include <string.h>

static int table[4096];  // .bss: part of the writable segment ld.so maps
static int initialised = 0;
static char* scratch = NULL;
static __thread int tls_calls;

// Pointers to string literals in a const array: .data.rel.ro, under RELRO.
static const char* const kNames[] = {"alpha", "beta", "gamma", "delta"};

__attribute__((constructor)) static void PluginInit(void) {
  for (int i = 0; i < 4096; ++i) table[i] = (i * 37) % 101;
  scratch = malloc(300 * 1024);  // above the mmap threshold: its own mapping
  if (scratch != NULL) memset(scratch, 0x5a, 300 * 1024);
  initialised = 1;
}

__attribute__((destructor)) static void PluginFini(void) {
  free(scratch);
  scratch = NULL;
}

int itest_plugin_value(int x) {
  ++tls_calls;
  if (!initialised || scratch == NULL || scratch[1234] != 0x5a) return -1;
  return x * 3 + table[x & 4095];
}

int itest_plugin_calls(void) { return tls_calls; }

const char* itest_plugin_name(int i) { return kNames[i & 3]; }

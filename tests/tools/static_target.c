/* static_target.c — a statically linked program (no PT_INTERP) that
 * `vmashadow run` must refuse: LD_PRELOAD cannot reach it. */
int main(void) { return 0; }

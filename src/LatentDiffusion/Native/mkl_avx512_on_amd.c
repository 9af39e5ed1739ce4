/*
 * libtorch's float32 matrix products run in Intel MKL, which picks its kernels by CPU vendor: on AMD processors it
 * takes the AVX2 path even when the CPU has AVX-512 (Zen 4, Zen 5), at about half the speed. MKL asks this function
 * whether the CPU is Intel's; loaded into the global symbol scope before libtorch (Diagnostics/NativeRuntime), this
 * definition answers for MKL's own, so its AVX-512 kernels run. Only loaded on AMD CPUs with AVX-512
 * (docs/performance.md has the measurements; LDM_MKL_AVX512_ON_AMD=off leaves MKL alone).
 */
int mkl_serv_intel_cpu_true(void) { return 1; }

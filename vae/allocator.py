"""Transparent huge pages for XLA's buffers on JAX, by restarting the script once.

On JAX, each compiled training step allocates its larger buffers with
`malloc` and frees them at its end. glibc serves such large requests
with fresh `mmap` pages, so every step pays a page fault per 4 KiB again:
on a 2-core CPU the CNN VAE's step took 53-65 ms instead of 35 ms
(benchmarks/README.md). glibc's tunable `glibc.malloc.hugetlb=1` makes
malloc ask for 2 MiB transparent huge pages (`madvise`), 512 times fewer
faults. glibc reads its tunables once, when a process starts, so the example
scripts restart themselves with it before anything heavy is imported. In a
notebook, start Jupyter with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` to get the same.
TensorFlow and PyTorch pool their own memory; TensorFlow was slower with the
tunable, so only JAX gets it.
"""

import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb=1"
_THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_pages_would_help():
    """Whether this process runs on glibc with huge pages on request (`madvise`) and
    without the tunable yet."""
    if "glibc.malloc.hugetlb" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        with open(_THP_SETTING) as setting:
            # "always [madvise] never": with [always] every mapping gets them
            # already, with [never] none can.
            return "[madvise]" in setting.read()
    except OSError:
        return False


def restart_with_huge_pages():
    """Re-executes this Python command line with `TUNABLE` set, where that helps.

    Call it only from a script's start, before Keras is imported: the process
    is replaced (same PID, same arguments), and on return nothing happened.
    """
    if "keras" in sys.modules or not huge_pages_would_help():
        return
    tunables = [t for t in os.environ.get("GLIBC_TUNABLES", "").split(":") if t]
    os.environ["GLIBC_TUNABLES"] = ":".join([*tunables, TUNABLE])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

"""cffi build script for engine._native: process creation and mount helpers in C.

Built by `pip install -e .` (setup.py's cffi_modules) or in place with
`python native/build_native.py` (writes engine/_native*.so next to the package).
The C side knows nothing about Python: it takes the flat `struct pe_spec` of pe_spawn.h.
"""
import os

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name: str) -> str:
    with open(os.path.join(HERE, name)) as f:
        return f.read()


def _cdef_from_header(text: str) -> str:
    # cffi's cdef takes integer #defines, structs and prototypes; drop the include guard.
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("#ifndef", "#endif", "#if ")) or s in ("#define PE_SPAWN_H", "#define PE_HOSTOPS_H"):
            continue
        keep.append(line)
    return "\n".join(keep)


ffibuilder = cffi.FFI()
ffibuilder.cdef(_cdef_from_header(_read("pe_spawn.h")))
ffibuilder.cdef(_cdef_from_header(_read("pe_hostops.h")))
ffibuilder.set_source(
    "engine._native",
    # One translation unit: the generated module includes the C source (no setuptools
    # `sources=` path games between pip builds and in-place builds).
    '#include "pe_spawn.c"\n#include "pe_wire.c"\n#include "pe_hostops.c"\n',
    include_dirs=[HERE],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
)

if __name__ == "__main__":
    # In-place build: put the extension into <repo>/engine/.
    ffibuilder.compile(tmpdir=os.path.join(HERE, "..", "build", "cffi"), verbose=True)
    import glob
    import shutil

    for so in glob.glob(os.path.join(HERE, "..", "build", "cffi", "engine", "_native*.so")):
        shutil.copy(so, os.path.join(HERE, "..", "engine", os.path.basename(so)))

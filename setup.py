"""setuptools entry: the cffi extension (cffi_modules) and two executables.

`build_ext` also compiles native/pe_spawner.c into engine/pe-spawner and native/pe_init.c into
engine/pe-init (static: it runs inside any container's rootfs as `--init`), next to the
extension (in place for `pip install -e .` / `setup.py build_ext --inplace`), so a normal
install has them."""
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


class build_ext_with_spawner(build_ext):
    def run(self):
        super().run()
        out_dir = os.path.join(HERE, "engine") if self.inplace else os.path.join(self.build_lib, "engine")
        os.makedirs(out_dir, exist_ok=True)
        for source, name, link_args in (("pe_spawner.c", "pe-spawner", []), ("pe_init.c", "pe-init", ["-static", "-s"])):
            objects = self.compiler.compile(
                [os.path.join("native", source)], output_dir=self.build_temp,
                include_dirs=[os.path.join(HERE, "native")],
                extra_postargs=["-O2", "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"])
            self.compiler.link_executable(objects, name, output_dir=out_dir, extra_postargs=link_args)


setup(cffi_modules=["native/build_native.py:ffibuilder"], cmdclass={"build_ext": build_ext_with_spawner})

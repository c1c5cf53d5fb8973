"""Only here because setuptools takes `cffi_modules` through setup()."""
from setuptools import setup

setup(cffi_modules=["native/build_native.py:ffibuilder"])

"""Build the compiled ring buffer.

The extension is required, never optional: if Cython or the C compiler fails,
the install fails, so CI can never silently test only the pure-Python twin.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("tessera.cext._ring", ["cext/_ring.pyx"])],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
)

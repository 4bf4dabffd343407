"""Compile ``.py`` files to bytecode; run as a script by the *target* Python interpreter.

Bytecode is specific to one Python version, so this file is executed by an interpreter of
the Lambda runtime's version, not imported by the build tool. It uses the standard library
only and must stay compatible with every Python Lambda offers.

Input: the root directory and the in-package prefix as arguments, a JSON list of relative
paths on stdin. Output: a JSON object on stdout with the cache tag and the files that did
not compile (they stay in the package as source only).

The ``.pyc`` files are "unchecked hash" based: Lambda's code is immutable, so checking the
source's timestamp (which a zip cannot carry faithfully) at every import would be wasted
work, and leaving timestamps out keeps builds byte-for-byte reproducible.
"""

import json
import os
import py_compile
import sys


def main() -> int:
    root, prefix = sys.argv[1], sys.argv[2]
    relative_paths = json.load(sys.stdin)
    failed = []
    for relative in relative_paths:
        try:
            py_compile.compile(
                os.path.join(root, relative),
                dfile=prefix.rstrip("/") + "/" + relative,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except (py_compile.PyCompileError, UnicodeDecodeError, ValueError):
            failed.append(relative)
    json.dump({"cache_tag": sys.implementation.cache_tag, "failed": failed}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

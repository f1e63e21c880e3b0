"""Where the frozen binary starts (PyInstaller wants a script, not a module).

Importing the package's entry point by absolute name keeps ``__main__.py``
free to use relative imports, which a script path would break.
"""

import sys

from presence_desktop.__main__ import main

if __name__ == "__main__":
    sys.exit(main())

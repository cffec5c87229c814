"""Package layout that pyproject.toml cannot express: the top-level conf/ and data/ folders ship inside lmrec.

`conf/` becomes the package `lmrec.conf` (Hydra reads it via `pkg://lmrec.conf`) and `data/` becomes
`lmrec.bundled` (the bundled dataset with its licence README), so an installed wheel has both, and an editable
install maps them back to the checkout's folders. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "lmrec.conf", "lmrec.bundled"],
    package_dir={"": "src", "lmrec.conf": "conf", "lmrec.bundled": "data"},
    package_data={
        "lmrec.conf": ["**/*.yaml"],
        "lmrec.bundled": ["*/README.txt", "*/SHA256SUMS", "*/*.csv"],
        "lmrec.data": ["known_checksums/*.sha256"],
    },
)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs gi-docgen, then copies the pages' images to images/ in its output
and drops the index's empty Website and Source rows.

gi-docgen copies `content_images` flat into the output directory, but the
pages refer to them as `images/NAME.svg`: the path that also works where the
markdown is read from docs/ (GitHub). So they are copied there too.

Usage: gen-docs.py --images IMAGE... -- GI-DOCGEN-COMMAND...
(the command must have an --output-dir=DIR argument)
"""

import os
import re
import shutil
import subprocess
import sys


def main(argv):
    sep = argv.index("--")
    images = [a for a in argv[1:sep] if a != "--images"]
    command = argv[sep + 1:]
    output_dir = next(a.split("=", 1)[1] for a in command
                      if a.startswith("--output-dir="))

    ret = subprocess.call(command)
    if ret != 0:
        return ret

    # The theme prints the Website and Source rows even with no URL (there
    # is no public one yet): drop them when empty
    index = os.path.join(output_dir, "index.html")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            lines = f.readlines()
        kept = [line for line in lines
                if not re.search(r'<td><em>(Website|Source)</em></td><td><a href="" ', line)]
        if kept != lines:
            with open(index, "w", encoding="utf-8") as f:
                f.writelines(kept)

    images_dir = os.path.join(output_dir, "images")
    os.makedirs(images_dir, exist_ok=True)
    for image in images:
        shutil.copyfile(image, os.path.join(images_dir, os.path.basename(image)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

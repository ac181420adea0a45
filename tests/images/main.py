#!/usr/bin/env python3
"""tests/images/main.py: the images tier for tests/run: boots the test
guest and the VR base under qemu and libvirt (TCG) and checks what the
tutorial's ttylinux stand-in must do (tests/images/selftest.py, TAP)."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    build = os.environ.get("KVMSTACK_BUILD", "build")
    images = Path(build) if Path(build).is_absolute() \
        else HERE.parent.parent / build
    sys.exit(subprocess.call([sys.executable, str(HERE / "selftest.py"),
                              "--images", str(images / "images")]))

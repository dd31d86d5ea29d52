"""A base image made from Debian's packages, for an engine that reaches no container registry.

debootstrap lays out a minimal Debian with python3 and venv, `docker import` turns the folder
into an image, and the tag caches it between runs. The Dockerfile stays the one every student
builds: only its BASE_IMAGE argument names this image instead of the official one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.docker_engine import apt_install, run, succeeds

# Bump the number whenever the recipe below changes, so a stale cached image is not reused.
BASE_TAG = "ml-serving-lab-base:bookworm-1"
SUITE = "bookworm"  # Debian 12: Python 3.11, the oldest the lab supports
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv")
# Caches and pages the image never reads: about half of the folder's 275 MB.
NOT_NEEDED = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
              "usr/share/locale")  # fmt: skip
CA_PATH = "/etc/ssl/certs/ca-certificates.crt"


def can_build_base() -> bool:
    """debootstrap needs root, and Debian's packages (present, or apt-get to install them)."""
    return os.geteuid() == 0 and bool(shutil.which("debootstrap") or shutil.which("apt-get"))


def pip_ca_bundle() -> Path:
    """The CA bundle this machine's pip trusts: pip inside a container needs the same one."""
    if os.environ.get("PIP_CERT"):
        return Path(os.environ["PIP_CERT"])
    asked = [sys.executable, "-m", "pip", "config", "get", "global.cert"]
    configured = subprocess.run(asked, capture_output=True, text=True).stdout.strip()
    return Path(configured or CA_PATH)


def base_image() -> str:
    """The tag of the local base image, built first if no image has that tag yet."""
    if succeeds(["docker", "image", "inspect", BASE_TAG]):
        return BASE_TAG
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    with tempfile.TemporaryDirectory(prefix="lab-base-") as folder:
        root = Path(folder) / "root"
        variant = ["--variant=minbase", f"--include={','.join(PACKAGES)}"]
        run(["debootstrap", *variant, SUITE, str(root), MIRROR], timeout=900)
        for name in NOT_NEEDED:
            shutil.rmtree(root / name, ignore_errors=True)
        # Baked in at the path Debian's pip reads, so `pip install` in the Dockerfile trusts
        # whatever this machine trusts on its way to the package index.
        (root / CA_PATH.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pip_ca_bundle(), root / CA_PATH.lstrip("/"))
        changes = ["--change", f"ENV PIP_CERT={CA_PATH}", "--change", 'CMD ["python3"]']
        with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
            run(["docker", "import", *changes, "-", BASE_TAG], timeout=600, stdin=tar.stdout)
        if tar.returncode != 0:
            raise RuntimeError(f"tar of {root} failed")
    return BASE_TAG


def build_lab_images(image: str, balancer_image: str, timeout: float = 1200) -> None:
    """The lab's image and the balancer's, from their Dockerfiles as students build them; only
    BASE_IMAGE differs where no registry is (then made here, from Debian's packages)."""
    build_args = ["--build-arg", f"BASE_IMAGE={base_image()}"] if can_build_base() else []
    root = Path(__file__).resolve().parent.parent
    run(["docker", "build", *build_args, "-t", image, str(root)], timeout=timeout)
    balancer = str(root / "deploy" / "balancer")
    run(["docker", "build", *build_args, "-t", balancer_image, balancer], timeout=timeout)

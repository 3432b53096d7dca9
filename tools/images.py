"""`make images`: the four function images, built locally with podman exactly as skaffold builds them.

The artifacts (image name, context, Dockerfile, build args) are read from skaffold.yaml, so a
local build and a deploy cannot drift. No Docker daemon and no base-image registry are needed:

- podman, runc and debootstrap come from Debian's packages (installed with apt-get when missing);
- podman runs with its own small containers.conf (``CONTAINERS_CONF``, written under .data/images):
  the runc runtime (crun refuses these machines' hybrid cgroup setup) and no default ulimits
  (raising them is refused here). Nothing under /etc is changed.
- the Dockerfile's base, ``python:3.11-slim-bookworm``, is replaced by a stand-in made with
  debootstrap (Debian bookworm's python3 is 3.11) and passed as the ``PYTHON_IMAGE`` build arg.
  It is built once: the rootfs tarball is kept under .data/images and the imported image in
  podman's store, and both are reused. ``PYTHON_IMAGE=python:3.11-slim-bookworm make images``
  uses the real base where a registry is reachable.

    python -m tools.images build            # what `make images` runs
    python -m tools.images list             # the artifacts read from skaffold.yaml
    python -m tools.images podman ARGS...   # podman with this project's settings (try an image by hand)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SKAFFOLD = ROOT / "skaffold.yaml"
CACHE = ROOT / ".data" / "images"
CONTAINERS_CONF = CACHE / "containers.conf"
STAND_IN = "localhost/patient-mgt-pybase:3.11-bookworm"
STAND_IN_TAR = CACHE / "pybase-3.11-bookworm.tar"
APT_PACKAGES = ["podman", "runc", "debootstrap", "uidmap"]
TOOLS = ["podman", "runc", "debootstrap"]
# What python:3.11-slim-bookworm provides that the Dockerfile uses: python/pip/venv, groupadd/useradd
# (passwd is in minbase), and CA certificates for pip.
STAND_IN_PACKAGES = ["python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates"]
# pip settings that name paths on the host only, dropped from the pip.conf copied into the stand-in.
HOST_ONLY_PIP_KEYS = ("constraint", "find-links", "extra-index-url")


def say(text: str) -> None:
    print(f"[images] {text}", flush=True)


@dataclass(frozen=True)
class Artifact:
    image: str
    context: Path
    dockerfile: str
    build_args: dict[str, str]

    @property
    def function_dir(self) -> str:
        return self.build_args["FUNCTION_DIR"]


def artifacts(path: Path = SKAFFOLD) -> list[Artifact]:
    """Every artifact of every config in skaffold.yaml, in file order (each image once)."""
    found: dict[str, Artifact] = {}
    for config in yaml.safe_load_all(path.read_text()):
        for art in (config or {}).get("build", {}).get("artifacts", []):
            docker = art["docker"]
            found.setdefault(art["image"], Artifact(
                image=art["image"], context=(path.parent / art.get("context", ".")).resolve(),
                dockerfile=docker.get("dockerfile", "Dockerfile"),
                build_args={k: str(v) for k, v in (docker.get("buildArgs") or {}).items()}))
    return list(found.values())


def artifact_for(function_dir: str) -> Artifact:
    (art,) = [a for a in artifacts() if a.function_dir == function_dir]
    return art


# --- tools and podman ------------------------------------------------------------------------


def _as_root(cmd: list[str]) -> list[str]:
    """Podman runs rootful (CI runs as root); elsewhere through sudo, keeping this project's settings."""
    if os.geteuid() == 0:
        return cmd
    if shutil.which("sudo"):
        return ["sudo", "--preserve-env=CONTAINERS_CONF,DEBIAN_FRONTEND", *cmd]
    raise SystemExit(f"[images] needs root (or sudo) for: {' '.join(cmd)}")


def ensure_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / "apt.log"
    say(f"installing {', '.join(APT_PACKAGES)} with apt-get ({', '.join(missing)} missing; output in {log.relative_to(ROOT)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log.open("w") as out:
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *APT_PACKAGES]):
            if subprocess.run(_as_root(cmd), env=env, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise SystemExit(f"[images] {' '.join(cmd)} failed:\n" + "\n".join(log.read_text().splitlines()[-20:]))


def podman_env() -> dict[str, str]:
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'
    if not CONTAINERS_CONF.exists() or CONTAINERS_CONF.read_text() != conf:
        CONTAINERS_CONF.write_text(conf)
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, capture: bool = False, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run podman with this project's settings (as root, or through sudo)."""
    return subprocess.run(_as_root(["podman", *args]), check=check, text=True, env=podman_env(),
                          capture_output=capture, **kwargs)  # type: ignore[call-overload]


def image_exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def image_size(image: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image, capture=True).stdout.strip())


# --- the python:3.11-slim-bookworm stand-in --------------------------------------------------


def apt_mirror() -> str:
    """The Debian mirror this machine's apt already uses (the stand-in gets the same packages)."""
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    for line in Path("/etc/apt/sources.list").read_text().splitlines() if Path("/etc/apt/sources.list").exists() else []:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
            return parts[1]
    return "http://deb.debian.org/debian"


def _give_host_package_access(rootfs: Path) -> None:
    """This machine's way to the package index: its extra CA certificates and its pip.conf."""
    cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if cas:
        target = rootfs / "usr/local/share/ca-certificates"
        target.mkdir(parents=True, exist_ok=True)
        for ca in cas:
            shutil.copy2(ca, target / ca.name)
        subprocess.run(_as_root(["chroot", str(rootfs), "update-ca-certificates"]), check=True, stdout=subprocess.DEVNULL)
    pip_conf = Path("/etc/pip.conf")
    if pip_conf.exists():
        kept = [line for line in pip_conf.read_text().splitlines()
                if not line.strip().replace(" ", "").startswith(tuple(f"{k}=" for k in HOST_ONLY_PIP_KEYS))]
        (rootfs / "etc/pip.conf").write_text("\n".join(kept) + "\n")
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()


def ensure_stand_in() -> None:
    if image_exists(STAND_IN):
        return
    if not STAND_IN_TAR.exists():
        started = time.monotonic()
        mirror = apt_mirror()
        say(f"building the python:3.11-slim-bookworm stand-in with debootstrap from {mirror} (once; a few minutes)")
        with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            subprocess.run(_as_root(["debootstrap", "--variant=minbase", f"--include={','.join(STAND_IN_PACKAGES)}",
                                     "bookworm", str(rootfs), mirror]), check=True, stdout=subprocess.DEVNULL)
            _give_host_package_access(rootfs)
            for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (rootfs / cache).glob("*"):
                    if entry.is_file():
                        entry.unlink()
            partial = STAND_IN_TAR.with_suffix(".tar.partial")
            subprocess.run(_as_root(["tar", "-C", str(rootfs), "-cf", str(partial), "."]), check=True)
            partial.rename(STAND_IN_TAR)
        say(f"stand-in rootfs ready in {time.monotonic() - started:.0f} s: {STAND_IN_TAR.relative_to(ROOT)}")
    podman("import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]', str(STAND_IN_TAR), STAND_IN,
           stdout=subprocess.DEVNULL)
    say(f"imported {STAND_IN}")


# --- build -----------------------------------------------------------------------------------


def build(python_image: str | None, only: list[str] | None = None) -> list[dict[str, object]]:
    ensure_tools()
    base = python_image or STAND_IN
    if not python_image:
        ensure_stand_in()
    results = []
    for art in artifacts():
        if only and art.function_dir not in only:
            continue
        args = ["build", "--network", "host", "--layers", "-f", str(art.context / art.dockerfile),
                "--build-arg", f"PYTHON_IMAGE={base}"]
        for name, value in art.build_args.items():
            args += ["--build-arg", f"{name}={value}"]
        say(f"building {art.image} ({', '.join(f'{k}={v}' for k, v in art.build_args.items())})")
        started = time.monotonic()
        podman(*args, "-t", art.image, str(art.context))
        seconds = time.monotonic() - started
        results.append({"image": art.image, "seconds": round(seconds, 1), "bytes": image_size(art.image)})
    for r in results:
        say(f"{r['image']:<28} {int(r['bytes']) / 1e6:6.0f} MB   built in {r['seconds']:.0f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build every image skaffold.yaml names")
    b.add_argument("--python-image", default=os.environ.get("PYTHON_IMAGE") or None,
                   help="base image (default: the local stand-in for python:3.11-slim-bookworm)")
    b.add_argument("--only", nargs="*", help="function folders to build (default: all)")
    sub.add_parser("list", help="print the artifacts read from skaffold.yaml")
    p = sub.add_parser("podman", help="run podman with this project's settings")
    p.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.python_image, args.only)
    elif args.command == "list":
        for art in artifacts():
            print(art.image, json.dumps(art.build_args))
    else:
        ensure_tools()
        return podman(*args.args, check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())

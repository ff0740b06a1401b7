"""DY3xx: CUDA, GPU architecture, platforms, wheels and the PyTorch ABI.

Judged against the compatibility data in `data/compat.yaml` (dockyard.compat): a version the
data does not know is not judged, so these rules stay silent rather than guess.

Where a build's CUDA comes from, nearest first: the service's own requirements (a
`torch==X+cuXYZ` pin), then each family up its `from` chain (`cuda:`, `torch:`, a torch pin
in `requirements:`), then the root's stock image (`nvidia/cuda:12.8.0-...`, an NGC month).
A finding about a family names every service (copy) that runs it on the machine at fault.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from dockyard import compat
from dockyard.checks.rules import Copy, Rule, copies, names
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.manifest.models import GpuSpec, MachineSpec
from dockyard.plan.family import chain, python_minor, root_family, root_image
from dockyard.plan.model import Plan

Path = tuple[str | int, ...]

CODES = {c.code: c for c in (
    Code("DY301", Severity.ERROR, "a GPU service needs a newer CUDA than its machine's driver "
         "supports", "update the driver, or build for the CUDA the driver has"),
    Code("DY302", Severity.ERROR, "the GPU's SM architecture is not supported by the CUDA or "
         "torch build the service runs", "use a CUDA / torch wheel that targets the GPU"),
    Code("DY303", Severity.ERROR, "a family's `platforms:` do not include the CPU architecture "
         "of a machine that runs it", "add the platform, or run the service elsewhere"),
    Code("DY304", Severity.ERROR, "a requirement has no (CUDA) wheel for the machine's platform",
         "use another package or version, an index that has the wheel, or another machine"),
    Code("DY305", Severity.ERROR, "a family on a vendor torch base (NGC) installs packages that "
         "pull torch from PyPI and replace the vendor's build",
         "move those packages to a sidecar family on its own base"),
    Code("DY306", Severity.WARNING, "a family installs a package that pins torch exactly on a "
         "parent that already has torch", "pin a version built for the parent's torch"),
    Code("DY307", Severity.WARNING, "CUDA torch wheels stacked on an nvidia/cuda image ship the "
         "CUDA libraries twice", "build the torch family from a plain base"),
    Code("DY308", Severity.WARNING, "TORCH_CUDA_ARCH_LIST is malformed or leaves out the GPU "
         "the service runs on", "write compute capabilities such as \"8.9;8.6\""),
    Code("DY309", Severity.WARNING, "an environment name CUDA / PyTorch / the NVIDIA runtime "
         "does not read (a near-miss of a real one)", "use the real name"),
)}


# --- What a service runs: its family chain and where its CUDA and torch come from ------------

@dataclass(frozen=True)
class Source:
    """One place that fixes the CUDA (and maybe the torch build) a service runs."""

    what: str  # for messages: "family gpu (`cuda: 12.1`)"
    path: Path
    cuda: str = ""
    torch: str = ""  # torch version, for wheel SM lists; "" when not a PyPI torch wheel
    variant: str = ""  # "cu121"; "" when pip's default (PyPI) wheel
    strict: bool = False  # an nvidia/cuda or NGC image: the runtime refuses an older driver


def _torch_pin(requirement: str, what: str, path: Path) -> Source | None:
    req = compat.parse_requirement(requirement)
    if req is None or req.name != "torch" or not req.pin:
        return None
    variant = req.local if compat.variant_cuda(req.local) else ""
    if req.local and not variant:
        return None  # +cpu, or a vendor build: no CUDA wheel to judge
    return Source(f"{req.text} in {what}", path, compat.variant_cuda(variant), req.pin, variant)


def sources(fleet: Fleet, service: str,
            memo: dict[str, list[Source]] | None = None) -> list[Source]:
    """Where the service's CUDA comes from, nearest first. `memo` keeps each family's part
    across the services of one rule run (fleets of 10,000 services share a few families)."""
    svc = fleet.spec.services[service]
    found: list[Source] = []
    for i, text in enumerate(svc.requirements):
        pin = _torch_pin(text, f"service {service}", ("services", service, "requirements", i))
        if pin:
            found.append(pin)
    if svc.image:
        found += _image_sources(svc.image, f"image {svc.image}", ("services", service, "image"))
        return found
    if memo is None:
        return found + family_sources(fleet, svc.family)
    if svc.family not in memo:
        memo[svc.family] = family_sources(fleet, svc.family)
    return found + memo[svc.family]


def family_sources(fleet: Fleet, family: str) -> list[Source]:
    """The CUDA and torch a family's chain fixes, nearest first, then its root image's."""
    found: list[Source] = []
    for fam_name in chain(fleet.spec.families, family):
        fam = fleet.spec.families[fam_name]
        at: Path = ("families", fam_name)
        for i, text in enumerate(fam.requirements):
            pin = _torch_pin(text, f"family {fam_name}", (*at, "requirements", i))
            if pin:
                found.append(pin)
        local = fam.torch.partition("+")[2]
        variant = local if compat.variant_cuda(local) else compat.cuda_variant(fam.cuda)
        if fam.torch and _pypi_torch(fam.torch) and variant:
            found.append(Source(f"family {fam_name} (`torch: {fam.torch}`"
                                + (f", `cuda: {fam.cuda}`" if fam.cuda else "") + ")",
                                (*at, "torch"), compat.variant_cuda(variant), fam.torch, variant))
        if fam.cuda:
            found.append(Source(f"family {fam_name} (`cuda: {fam.cuda}`)", (*at, "cuda"),
                                compat.minor(fam.cuda)))
    image = root_image(fleet.spec.families, family)
    if image:
        found += _image_sources(image, f"base image {image}",
                                ("families", root_family(fleet.spec.families, family), "from"))
    return found


def _image_sources(image: str, what: str, path: Path) -> list[Source]:
    """A stock image's CUDA (nvidia/cuda, NGC: enforced by the runtime) or its torch build
    (pytorch/pytorch:<torch>-cuda<X.Y>-...: a torch wheel like any other)."""
    built = compat.image_torch(image)
    if built is not None:
        torch, variant = built
        return [Source(what, path, compat.variant_cuda(variant), torch, variant)]
    cuda = compat.image_cuda(image)
    return [Source(what, path, cuda, strict=True)] if cuda else []


def _pypi_torch(version: str) -> bool:
    """A torch version PyPI / download.pytorch.org publishes (not "2.6.0a0+b5b1008")."""
    release, _, local = version.partition("+")
    return bool(re.fullmatch(r"\d+\.\d+(\.\d+)?", release)) and (
        not local or bool(compat.variant_cuda(local)) or local == "cpu")


def machine_cuda(machine: MachineSpec) -> str:
    """The highest CUDA the machine's driver supports: `cuda_driver`, or read off `driver`."""
    if machine.cuda_driver:
        return compat.minor(machine.cuda_driver)
    return compat.driver_cuda(machine.driver) or "" if machine.driver else ""


def gpu_arch(gpu: GpuSpec) -> str:
    return gpu.sm or compat.gpu_sm(gpu.model) or ""


def _gpus(fleet: Fleet, copy: Copy) -> list[tuple[int, GpuSpec]]:
    """The GPUs a copy with a GPU request runs on (all of its machine's when not placed)."""
    machine = fleet.spec.machines.get(copy.machine)
    if machine is None or copy.spec.gpu is None or not copy.spec.gpu.count:
        return []
    listed = list(enumerate(machine.gpus))
    chosen = [(i, g) for i, g in listed if i in copy.gpus]
    return chosen or listed


class _Grouped:
    """Findings keyed by (manifest place, machine, ...): one finding lists every service."""

    def __init__(self) -> None:
        self.services: dict[tuple[object, ...], list[str]] = defaultdict(list)
        self.facts: dict[tuple[object, ...], tuple[Severity, str, str]] = {}

    def add(self, key: tuple[object, ...], service: str, severity: Severity, message: str,
            fix: str) -> None:
        if service not in self.services[key]:
            self.services[key].append(service)
        self.facts.setdefault(key, (severity, message, fix))

    def findings(self, fleet: Fleet, code: str) -> Iterator[Finding]:
        for key, services in self.services.items():
            severity, message, fix = self.facts[key]
            path = key[0]
            assert isinstance(path, tuple)
            yield Finding(code, severity, fleet.where(*path),
                          f"{message} (service{'s' if len(services) > 1 else ''} "
                          f"{names(sorted(services))})", fix,
                          service=services[0] if len(services) == 1 else "")


# --- DY301: CUDA above the driver --------------------------------------------------------------

def cuda_driver(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY301: the build needs a newer CUDA than the machine's driver supports.

    Across CUDA majors nothing runs. Within one major, CUDA minor version compatibility runs
    most code on an older driver (not PTX JIT, not newer features): a warning, except for
    nvidia/cuda and NGC images, whose NVIDIA_REQUIRE_CUDA makes the runtime refuse to start.
    """
    grouped = _Grouped()
    memo: dict[str, list[Source]] = {}
    for copy in copies(plan):
        machine = fleet.spec.machines.get(copy.machine)
        if machine is None or not _gpus(fleet, copy):
            continue
        have = machine_cuda(machine)
        if not compat.version_key(have):
            continue
        seen: set[str] = set()
        for src in sources(fleet, copy.name, memo):
            if not src.cuda or src.cuda in seen or compat.cuda_at_least(have, src.cuda):
                continue
            seen.add(src.cuda)
            major = compat.version_key(src.cuda)[0] > compat.version_key(have)[0]
            severity = Severity.ERROR if major or src.strict else Severity.WARNING
            how = ("nothing built for CUDA "
                   f"{compat.version_key(src.cuda)[0]} runs on it" if major else
                   "the container runtime refuses to start it (NVIDIA_REQUIRE_CUDA)" if src.strict
                   else "it runs only through CUDA minor version compatibility (no PTX JIT, "
                   "no features of the newer CUDA)")
            driver = compat.min_driver(src.cuda)
            fix = (f"update the driver on {copy.machine} to >= {driver} (CUDA {src.cuda})"
                   if driver else f"update the driver on {copy.machine} to one for CUDA "
                   f"{src.cuda}") + f", or build for CUDA <= {have}"
            grouped.add((src.path, copy.machine, src.cuda), copy.name, severity,
                        f"{src.what} needs CUDA {src.cuda}, but the driver of machine "
                        f"{copy.machine} supports CUDA {have}: {how}", fix)
    yield from grouped.findings(fleet, "DY301")


# --- DY302: the GPU's architecture ---------------------------------------------------------

def _torch_fix(sm: str, arch: str) -> str:
    """The oldest torch release (and its index) whose wheels run natively on `sm`."""
    for release in sorted(compat.data().torch, key=compat.version_key):
        variants = compat.torch_variants(release) or {}
        for variant in sorted(variants, key=lambda v: compat.version_key(compat.variant_cuda(v))):
            if compat.sm_runs(variants[variant], sm):
                index = compat.wheel_index(release, variant, arch)
                if index:
                    return (f"torch>={release} from {index} (its {variant} wheels include "
                            f"sm_{sm.replace('.', '')})")
    return f"a torch build compiled for sm_{sm.replace('.', '')}"


def gpu_architecture(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY302: the GPU's compute capability is not in what the torch wheel or CUDA targets.

    A torch wheel without the GPU's SM fails at the first kernel ("no kernel image is
    available"): an error. A CUDA older than the GPU can at best JIT the PTX of an older
    architecture at start (her-os saw 140-280 s): a warning; a CUDA that dropped an old GPU
    cannot run on it at all: an error.
    """
    grouped = _Grouped()
    memo: dict[str, list[Source]] = {}
    for copy in copies(plan):
        machine = fleet.spec.machines[copy.machine]
        for index, gpu in _gpus(fleet, copy):
            sm = gpu_arch(gpu)
            if len(compat.version_key(sm)) < 2:
                continue  # not a compute capability ("8.9")
            label = f"GPU {index} of {copy.machine} ({gpu.model or 'sm ' + sm}, sm_" \
                    f"{sm.replace('.', '')})"
            found = sources(fleet, copy.name, memo)
            # The nearest torch wheel is what runs the kernels; without one, the nearest CUDA.
            torch_src = next((src for src in found if src.torch), None)
            variant = ""
            built: tuple[str, ...] | None = None
            if torch_src is not None:
                variant = torch_src.variant or (compat.pypi_default_variant(torch_src.torch)
                                                or "" if machine.arch == "amd64" else "")
                built = compat.torch_sms(torch_src.torch, variant) if variant else None
            if torch_src is not None and built is not None:
                if compat.sm_runs(built, sm):
                    continue
                release = torch_src.torch.split("+")[0]
                grouped.add(
                    (torch_src.path, copy.machine, sm), copy.name, Severity.ERROR,
                    f"{torch_src.what}: torch {release} {variant} wheels are built for "
                    f"sm_{', sm_'.join(b.replace('.', '') for b in built)}, not for {label}",
                    f"use {_torch_fix(sm, machine.arch)}")
                continue
            cuda_src = next((src for src in found if src.cuda and not src.torch), None)
            if cuda_src is None:
                continue
            ok = compat.supports_sm(cuda_src.cuda, sm)
            if ok is None or ok:
                continue
            first = compat.first_cuda_for(sm)
            newer = bool(first) and compat.version_key(first or "") > \
                compat.version_key(cuda_src.cuda)
            grouped.add(
                (cuda_src.path, copy.machine, sm), copy.name,
                Severity.WARNING if newer else Severity.ERROR,
                f"{cuda_src.what}: CUDA {cuda_src.cuda} cannot build for {label}"
                + ("; it runs only if the build ships PTX the driver can JIT at every "
                   "start" if newer else f"; CUDA {cuda_src.cuda} dropped that architecture"),
                f"build with CUDA >= {first}" if newer and first else
                "build with a CUDA that still targets this GPU, or replace the GPU")
    yield from grouped.findings(fleet, "DY302")


# --- DY303: family platforms vs machine arch ---------------------------------------------

def platforms(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY303: a service runs a family built only for other CPU architectures."""
    grouped = _Grouped()
    for copy in copies(plan):
        machine = fleet.spec.machines.get(copy.machine)
        if machine is None or not copy.spec.family:
            continue
        for fam_name in chain(fleet.spec.families, copy.spec.family):
            fam = fleet.spec.families[fam_name]
            if not fam.platforms:
                continue
            if machine.arch not in fam.platforms:
                grouped.add(
                    (("families", fam_name, "platforms"), copy.machine), copy.name,
                    Severity.ERROR,
                    f"family {fam_name} is built for {', '.join(fam.platforms)}, but machine "
                    f"{copy.machine} is {machine.arch}",
                    f"add {machine.arch} to families.{fam_name}.platforms (if its packages "
                    f"have {machine.arch} wheels), or place the service on an "
                    f"{'/'.join(fam.platforms)} machine")
            break  # the nearest family that says decides
    yield from grouped.findings(fleet, "DY303")


# --- DY304: no wheel for the platform -------------------------------------------------------

def _requirements(fleet: Fleet, service: str) -> Iterator[tuple[str, Path, str]]:
    """(requirement, where, whose) for the service and each family of its chain."""
    svc = fleet.spec.services[service]
    for i, text in enumerate(svc.requirements):
        yield text, ("services", service, "requirements", i), f"service {service}"
    for fam_name in chain(fleet.spec.families, svc.family):
        for i, text in enumerate(fleet.spec.families[fam_name].requirements):
            yield text, ("families", fam_name, "requirements", i), f"family {fam_name}"


def missing_wheels(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY304: a requirement with no wheel (or no CUDA wheel) for the machine's platform."""
    grouped = _Grouped()
    for copy in copies(plan):
        machine = fleet.spec.machines.get(copy.machine)
        if machine is None:
            continue
        arch = machine.arch
        gpu = bool(_gpus(fleet, copy))
        python = python_minor(fleet.spec.families, copy.spec.family)
        for text, path, whose in _requirements(fleet, copy.name):
            gap = compat.no_wheel(text, arch, python)
            if gap is not None and gap.python_below:
                grouped.add(
                    (path, copy.machine), copy.name, Severity.ERROR,
                    f"{text} in {whose} has no wheel for Python {python} on linux/{arch}: "
                    f"{gap.note}", f"use a maintained alternative, or a Python older than "
                    f"{gap.python_below} for this family")
                continue
            if gap is not None and (gpu or not gap.cpu_only):
                grouped.add(
                    (path, copy.machine), copy.name,
                    Severity.WARNING if gap.cpu_only else Severity.ERROR,
                    f"{text} in {whose} has no {'CUDA ' if gap.cpu_only else ''}wheel for "
                    f"linux/{arch} (machine {copy.machine}): {gap.note}",
                    "run it on CPU knowingly, build it from source in the family, or use an "
                    "amd64 machine" if gap.cpu_only else
                    f"drop or replace {gap.name}, pin a version with a linux/{arch} wheel, or "
                    "run the service on a machine of another platform")
                continue
            req = compat.parse_requirement(text)
            if arch != "arm64" or req is None or req.name != "torch" or not req.pin:
                continue
            published = compat.torch_arm64(req.pin)
            if published is None:
                continue
            if req.local and compat.variant_cuda(req.local) and req.local not in published:
                grouped.add(
                    (path, copy.machine), copy.name, Severity.ERROR,
                    f"{text} in {whose}: torch {compat.minor(req.pin)} publishes no "
                    f"{req.local} wheel for linux/arm64 (machine {copy.machine}); arm64 "
                    f"CUDA wheels: {', '.join(published) or 'none'}",
                    "use a torch release with arm64 CUDA wheels, e.g. torch>=2.7 from "
                    "https://download.pytorch.org/whl/cu128, or a vendor (NGC) base")
            elif not req.local and gpu:
                grouped.add(
                    (path, copy.machine), copy.name, Severity.WARNING,
                    f"{text} in {whose}: PyPI's torch for linux/arm64 is CPU-only, so the GPU "
                    f"of machine {copy.machine} goes unused",
                    "pin a CUDA build, e.g. "
                    + (f"torch=={req.pin}+{published[-1]} from "
                       f"{compat.WHEEL_INDEX}{published[-1]}" if published else
                       "torch>=2.7 from https://download.pytorch.org/whl/cu128"))
    yield from grouped.findings(fleet, "DY304")


# --- DY305 / DY306: replacing a parent's torch ------------------------------------------------

def _torch_provider(fleet: Fleet, family: str) -> tuple[str, bool] | None:
    """What gave `family` torch before its own requirements: (description, vendor build?).

    The family's own `torch:` counts only when it is not a PyPI release ("2.6.0a0+b5b1008"):
    pip cannot install that, so the base image provides it. A PyPI version there is the
    family defining its own torch.
    """
    fams = chain(fleet.spec.families, family)
    own = fleet.spec.families[family].torch if fams else ""
    if own and not _pypi_torch(own):
        return f"family {family} (`torch: {own}`, a vendor build from its base)", True
    for parent in fams[1:]:
        fam = fleet.spec.families[parent]
        if fam.torch:
            return f"family {parent} (`torch: {fam.torch}`)", not _pypi_torch(fam.torch)
    image = root_image(fleet.spec.families, family)
    if image and compat.is_vendor_torch_image(image):
        return f"base image {image} (vendor torch)", True
    return None


def torch_abi(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY305 (vendor torch replaced) and DY306 (a parent's PyPI torch replaced)."""
    users: dict[str, list[str]] = defaultdict(list)
    for name, svc in sorted(fleet.spec.services.items()):
        for fam_name in chain(fleet.spec.families, svc.family):
            users[fam_name].append(name)
    targets: list[tuple[str, str, list[str], Path, str]] = []  # (family, whose, reqs...)
    for fam_name, fam in sorted(fleet.spec.families.items()):
        targets.append((fam_name, f"family {fam_name}", fam.requirements,
                        ("families", fam_name, "requirements"), ""))
    for name, svc in sorted(fleet.spec.services.items()):
        if svc.family in fleet.spec.families and svc.requirements:
            targets.append((svc.family, f"service {name}", svc.requirements,
                            ("services", name, "requirements"), name))
    for fam_name, whose, reqs, at, service in targets:
        provider = _torch_provider(fleet, fam_name) if fam_name in fleet.spec.families else None
        if provider is None:
            continue
        described, vendor = provider
        for i, text in enumerate(reqs):
            if vendor:
                dep = compat.torch_dependent(text)
                if dep is None:
                    continue
                yield Finding(
                    "DY305", Severity.ERROR, fleet.where(*at, i),
                    f"{text} in {whose} pulls torch from PyPI, which replaces the torch of "
                    f"{described}: the vendor build (and its GPU support) is lost",
                    f"move {dep} and what needs it to a sidecar family on its own base, e.g. "
                    "`from: python:3.12-slim` with a pinned CUDA torch wheel "
                    "(torch==X+cuXYZ from https://download.pytorch.org/whl/cuXYZ), and call it "
                    "over HTTP", service=service or (users[fam_name][0]
                                                     if len(users[fam_name]) == 1 else ""))
            else:
                dep = compat.pins_torch(text)
                req = compat.parse_requirement(text)
                if dep is None or req is None or req.pin:
                    continue
                yield Finding(
                    "DY306", Severity.WARNING, fleet.where(*at, i),
                    f"{text} in {whose} is not pinned, and each {dep} release needs one exact "
                    f"torch: pip will replace the torch of {described} with the one the newest "
                    f"{dep} wants", f"pin the {dep} release built for that torch, or give "
                    f"{whose.split(' ', 1)[1]} its own torch family", service=service)


# --- DY307: CUDA shipped twice ---------------------------------------------------------------

def cuda_twice(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY307: CUDA torch wheels (they carry CUDA via nvidia-* wheels) on an nvidia/cuda base."""
    for fam_name, fam in sorted(fleet.spec.families.items()):
        image = root_image(fleet.spec.families, fam_name)
        if not image or not compat.is_cuda_runtime_image(image):
            continue
        for i, text in enumerate(fam.requirements):
            req = compat.parse_requirement(text)
            if req is None or req.name != "torch" or req.local == "cpu":
                continue
            yield Finding(
                "DY307", Severity.WARNING, fleet.where("families", fam_name, "requirements", i),
                f"family {fam_name} installs {text} on {image}: the torch wheel brings its own "
                "CUDA libraries, so the image carries CUDA twice (about 2 GB more)",
                "build the torch family from a plain base (e.g. python:3.11-slim); the driver "
                "comes from the host through the NVIDIA container runtime")
            break


# --- DY308: TORCH_CUDA_ARCH_LIST --------------------------------------------------------------

_ARCH_NAMES = {"kepler", "maxwell", "pascal", "volta", "turing", "ampere", "ada", "hopper",
               "blackwell", "all", "common"}
_ARCH_ENTRY = re.compile(r"^(\d+)\.(\d+)[af]?(\+ptx)?$", re.IGNORECASE)


def arch_list(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY308: TORCH_CUDA_ARCH_LIST entries torch cannot read, or that miss the GPU in use."""
    envs: list[tuple[Path, str, list[str]]] = []
    users: dict[str, list[str]] = defaultdict(list)
    for name, svc in sorted(fleet.spec.services.items()):
        for fam_name in chain(fleet.spec.families, svc.family):
            users[fam_name].append(name)
        if "TORCH_CUDA_ARCH_LIST" in svc.env:
            envs.append((("services", name, "env", "TORCH_CUDA_ARCH_LIST"),
                         svc.env["TORCH_CUDA_ARCH_LIST"], [name]))
    for fam_name, fam in sorted(fleet.spec.families.items()):
        if "TORCH_CUDA_ARCH_LIST" in fam.env:
            envs.append((("families", fam_name, "env", "TORCH_CUDA_ARCH_LIST"),
                         fam.env["TORCH_CUDA_ARCH_LIST"], users[fam_name]))
    for path, value, services in envs:
        entries = [e for e in re.split(r"[;\s]+", value.strip()) if e]
        bad = [e for e in entries if not _ARCH_ENTRY.match(e) and e.lower() not in _ARCH_NAMES]
        if bad:
            hint = ";".join(f"{e[:-1]}.{e[-1]}" if e.isdigit() and len(e) >= 2 else e
                            for e in entries)
            yield Finding(
                "DY308", Severity.WARNING, fleet.where(*path),
                f"TORCH_CUDA_ARCH_LIST={value!r}: torch reads compute capabilities with a dot; "
                f"{', '.join(repr(b) for b in bad)} fail the build of any CUDA extension "
                "(\"Unknown CUDA arch\")", f"write TORCH_CUDA_ARCH_LIST=\"{hint}\"")
            continue
        built = [f"{m[1]}.{m[2]}" for e in entries if (m := _ARCH_ENTRY.match(e))]
        ptx = [f"{m[1]}.{m[2]}" for e in entries if (m := _ARCH_ENTRY.match(e)) and m[3]]
        if not built:
            continue
        missing: dict[tuple[str, str], list[str]] = defaultdict(list)
        for copy in copies(plan):
            if copy.name not in services:
                continue
            for _, gpu in _gpus(fleet, copy):
                sm = gpu_arch(gpu)
                if len(compat.version_key(sm)) < 2 or compat.sm_runs(built, sm) or any(
                        compat.version_key(p) <= compat.version_key(sm) for p in ptx):
                    continue
                missing[(copy.machine, sm)].append(copy.name)
        for (machine, sm), who in sorted(missing.items()):
            yield Finding(
                "DY308", Severity.WARNING, fleet.where(*path),
                f"TORCH_CUDA_ARCH_LIST={value!r} leaves out the GPU of {machine} "
                f"(sm_{sm.replace('.', '')}) that {names(sorted(set(who)))} run on: CUDA "
                "extensions built with it have no kernel for that GPU",
                f"add {sm} to the list: TORCH_CUDA_ARCH_LIST=\"{';'.join([*entries, sm])}\"")


# --- DY309: misnamed CUDA / torch environment variables -----------------------------------

def misnamed_env(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY309: GPU_VISIBLE_DEVICES, TORCH_CUDA_ALLOC_CONF...: set, and read by nobody."""
    spec = fleet.spec
    places: list[tuple[Path, dict[str, str], str, str]] = []
    for name, m in sorted(spec.machines.items()):
        places.append((("machines", name, "profile"), m.profile, f"machine {name}'s profile", ""))
    for name, fam in sorted(spec.families.items()):
        places.append((("families", name, "env"), fam.env, f"family {name}", ""))
    for name, svc in sorted(spec.services.items()):
        places.append((("services", name, "env"), svc.env, f"service {name}", name))
        for agent, a in sorted(svc.agents.items()):
            places.append((("services", name, "agents", agent, "env"), a.env,
                           f"agent {agent} of service {name}", name))
    for at, env, whose, service in places:
        for key, value in env.items():
            real = compat.env_real_name(key)
            if real is None or real in env:
                continue
            yield Finding(
                "DY309", Severity.WARNING, fleet.where(*at, key),
                f"{whose} sets {key}, which nothing reads: the setting is silently ignored "
                f"(the variable is {real})", f"rename it: {real}: {value!r}", service=service)


RULES: list[Rule] = [cuda_driver, gpu_architecture, platforms, missing_wheels, torch_abi,
                     cuda_twice, arch_list, misnamed_env]

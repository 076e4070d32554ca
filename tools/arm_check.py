"""`make arm-check`: the runtime installed and run on arm64, under QEMU's user-mode emulation.

Builds (once, cached in .arm-check/root) a Debian bookworm arm64 root with `debootstrap --foreign`
and its second stage run through qemu-user-static, installs FFmpeg with apt and the runtime with pip
from this checkout's own files (`.[cpu,network,live]`: no training or export extras) as on a
Raspberry Pi OS 64-bit box, then:

1. trains and exports a demo-size bundle on x86 (the demo recipe's model, an epoch or a few on
   40 built-in videos of the demo's 4 classes; cached in .arm-check/x86);
2. classifies the held-out videos with it on x86 and on emulated arm64 (a Cortex-A76, the
   Raspberry Pi 5's core) and compares: top-1 identical, and the logits of x86's decoded clips
   within --atol (each side's own decoding differs by a few grey levels: reported, not gated);
3. serves one member on arm64 to a NATS network whose other members run on x86, and checks that
   the network's vote equals the in-process one.

Needs root (debootstrap, chroot, mounts) and binfmt_misc; installs debootstrap and
qemu-user-static with apt and mounts binfmt_misc where they are missing. Runs at the lowest CPU
priority. `python tools/arm_check.py answers --out J --clips C BUNDLE VIDEO...` is the half that
runs on each side.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
EXTRAS = "cpu,network,live"  # the runtime install: setup.cfg's extras without train/export/test
# torchcodec's FFmpeg libraries, and the shared libpython its custom ops link (Debian's python3
# does not pull it in), as a Pi user installs them
APT = ["ffmpeg", "libpython3.11"]
QEMU_CPU = "cortex-a76"  # the Raspberry Pi 5's core: onnxruntime picks the kernels it would there
OPT = "/opt/picojepa"  # where the runtime lives inside the root
BINFMT = Path("/proc/sys/fs/binfmt_misc")
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
              "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "PYTHONUNBUFFERED": "1",
              "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_DEFAULT_TIMEOUT": "180", "PIP_NO_CACHE_DIR": "1",
              "PIP_CERT": "/etc/ssl/certs/host-ca-certificates.crt", "QEMU_CPU": QEMU_CPU}
# The demo recipe's model, trained just enough to give a bundle of the demo's size and shape
DEMO_SIZE = ["pretrain.epochs=1", "pretrain.warmup_epochs=0.5", "classify.epochs=5", "classify.warmup_epochs=1",
             "classify.feature_clips=1", "classify.val_fraction=0.4"]


class CheckError(Exception):
    """What the check needs and does not have, or what it found wrong: one line."""


def log(msg: str) -> None:
    click.echo(f"arm-check: {msg}", err=True)


def sh(argv: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    """Run `argv`; CheckError with the last lines of its output when it fails."""
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode:
        lines = (p.stdout + p.stderr).strip().splitlines()
        tail = " | ".join(([x.strip() for x in lines if x.strip().startswith("ERROR")] or lines)[-3:])
        raise CheckError(f"{what} failed (exit {p.returncode}): {tail}")
    return p


# ---- what the host needs -------------------------------------------------------------------------

def preflight() -> None:
    """Root, debootstrap, qemu-user-static and an aarch64 binfmt_misc entry, or one line saying which."""
    if os.geteuid() != 0:
        raise CheckError("needs root (debootstrap, chroot and mounts): run 'sudo make arm-check'")
    missing = [pkg for pkg, exe in (("debootstrap", "debootstrap"), ("qemu-user-static", "qemu-aarch64-static"))
               if not shutil.which(exe)]
    if missing:
        if not shutil.which("apt-get"):
            raise CheckError(f"needs {' and '.join(missing)} (no apt-get here to install them)")
        log(f"installing {' '.join(missing)} with apt-get")
        sh(["apt-get", "update", "-qq"], "apt-get update")
        sh(["apt-get", "install", "-y", "-qq", *missing, "binfmt-support"], "apt-get install",
           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not (BINFMT / "status").exists():
        if subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True).returncode:
            raise CheckError(f"needs binfmt_misc, and 'mount -t binfmt_misc binfmt_misc {BINFMT}' failed "
                             "(a container without it: run on the host or a VM)")
    if not (BINFMT / "qemu-aarch64").exists():
        if shutil.which("update-binfmts"):
            subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
        if not (BINFMT / "qemu-aarch64").exists():
            raise CheckError(f"no qemu-aarch64 entry in {BINFMT} ('update-binfmts --enable qemu-aarch64' "
                             "did not register one): reinstall qemu-user-static")


# ---- the arm64 root ------------------------------------------------------------------------------

# QEMU 7.2's user mode shows an arm64 program the host's x86 /proc/cpuinfo, on which the cpuinfo
# library inside onnxruntime and torch crashes (SIGSEGV at import): the root gets a Cortex-A76's.
CPUINFO = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 "
           "atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n"
           "CPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n")


class Mounts:
    """/proc (with an arm64 cpuinfo), /sys and a /dev/shm inside the root while it is used;
    unmounted on the way out."""

    def __init__(self, root: Path):
        self.root, self.done = root, []

    def __enter__(self):
        for stale in reversed(mounted_under(self.root)):  # left by a run that was killed
            subprocess.run(["umount", "-l", stale])
        for fs, sub in (("proc", "proc"), ("sysfs", "sys"), ("tmpfs", "dev/shm")):
            target = self.root / sub
            target.mkdir(parents=True, exist_ok=True)
            sh(["mount", "-t", fs, fs, str(target)], f"mount {fs} on {target}")
            self.done.append(target)
        fake = self.root.parent / "cpuinfo-cortex-a76"
        fake.write_text("".join(CPUINFO.format(i=i) for i in range(os.cpu_count() or 1)))
        sh(["mount", "--bind", str(fake), str(self.root / "proc/cpuinfo")], "mount --bind cpuinfo")
        self.done.append(self.root / "proc/cpuinfo")
        return self

    def __exit__(self, *exc):
        for target in reversed(self.done):
            subprocess.run(["umount", "-l", str(target)])


def mounted_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    return [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(prefix)]


def in_root(root: Path, argv: list[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    return sh(["chroot", str(root), *argv], what, env=CHROOT_ENV, timeout=timeout)


def debootstrap(root: Path) -> None:
    """Debian bookworm arm64 with Python: first stage on the host, second stage emulated."""
    stamp = root / ".arm-check-debootstrap"
    if stamp.exists():
        return
    if root.exists():
        if mounted_under(root):
            raise CheckError(f"{root} is half built and still has mounts ({', '.join(mounted_under(root))}): "
                             "unmount them, then run again")
        log(f"removing the half-built root {root}")
        shutil.rmtree(root)
    log(f"debootstrap {SUITE} arm64 into {root}: first stage (downloads)")
    sh(["debootstrap", "--arch=arm64", "--foreign", "--variant=minbase",
        "--include=python3,python3-venv,ca-certificates", SUITE, str(root), MIRROR], "debootstrap (first stage)")
    log("debootstrap second stage, emulated (minutes)")
    in_root(root, ["/debootstrap/debootstrap", "--second-stage"], "debootstrap --second-stage")
    (root / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")  # apt starts no services
    (root / "usr/sbin/policy-rc.d").chmod(0o755)
    stamp.touch()


def project_key() -> str:
    """Hash of the files the runtime install is made from: a changed file reinstalls."""
    h = hashlib.sha256()
    for p in project_files():
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def project_files() -> list[Path]:
    files = [REPO / "setup.cfg", REPO / "pyproject.toml", REPO / "README.md"]
    files += sorted(p for p in (REPO / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts
                    and ".egg-info" not in str(p) and p.suffix != ".pyc")
    return files


def install_runtime(root: Path) -> None:
    """apt-get install ffmpeg; a venv; pip install of this checkout with the runtime extras."""
    stamp = root / OPT.lstrip("/") / ".installed"
    key = project_key() + " " + " ".join(APT)
    if stamp.exists() and stamp.read_text() == key:
        return
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    # pip in the root trusts what the host trusts (a proxy's own CA, for one)
    shutil.copyfile(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
                    root / CHROOT_ENV["PIP_CERT"].lstrip("/"))
    apt_stamp = root / ".arm-check-apt"
    if not apt_stamp.exists() or apt_stamp.read_text() != " ".join(APT):
        log(f"apt-get install {' '.join(APT)} in the root, emulated (minutes)")
        in_root(root, ["apt-get", "update", "-qq"], "apt-get update (arm64 root)")
        in_root(root, ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT], "apt-get install (arm64 root)")
        in_root(root, ["apt-get", "clean"], "apt-get clean (arm64 root)")
        apt_stamp.write_text(" ".join(APT))
    src = root / OPT.lstrip("/") / "src"
    shutil.rmtree(src, ignore_errors=True)
    for p in project_files():
        (src / p.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, src / p.relative_to(REPO))
    venv = f"{OPT}/.venv"
    if not (root / venv.lstrip("/") / "bin/python").exists():
        in_root(root, ["python3", "-m", "venv", venv], "python3 -m venv (arm64 root)")
    log(f"pip install '{OPT}/src[{EXTRAS}]' in the root, emulated (minutes the first time)")
    # --no-compile: byte-compiling torch under emulation takes longer than the rest of the install
    in_root(root, [f"{venv}/bin/pip", "install", "-q", "--no-compile", f"{OPT}/src[{EXTRAS}]"],
            "pip install (arm64 root)")
    stamp.write_text(key)


# ---- the x86 side --------------------------------------------------------------------------------

def x86_bundle(cache: Path) -> tuple[Path, Path, list[Path]]:
    """A demo-size fused bundle and its separate-layout twin, and the held-out videos."""
    from picojepa.core.bundle import MANIFEST

    x86, bin_ = cache / "x86", Path(sys.executable).parent
    data, run = x86 / "data", x86 / "run"
    fused, net = x86 / "bundle", x86 / "bundle-net"
    if not (fused / MANIFEST).exists() or not (net / MANIFEST).exists():
        log("training and exporting a demo-size bundle on x86 (about a minute)")
        if not (data / "infer").is_dir():
            sh([str(bin_ / "picojepa-data"), "synth", str(data), "--classes", "4", "--videos-per-class", "10"],
               "picojepa-data synth")
        sh([str(bin_ / "picojepa-train"), "all", "--config", str(REPO / "configs/demo.yaml"), "--data", str(data),
            "--out", str(run), "--force", "--no-progress", *[a for s in DEMO_SIZE for a in ("--set", s)]],
           "picojepa-train (x86)")
        sh([str(bin_ / "picojepa-export"), str(run), "--out", str(fused), "--force", "--no-optimise"],
           "picojepa-export (x86)")
        sh([str(bin_ / "picojepa-export"), str(run), "--out", str(net), "--force", "--no-optimise",
            "--layout", "separate"], "picojepa-export --layout separate (x86)")
    videos = sorted((data / "infer").glob("*/*.mp4"))
    if not videos:
        raise CheckError(f"no held-out videos in {data / 'infer'}")
    return fused, net, videos


# ---- the answers, on either side -----------------------------------------------------------------

def answers(bundle: Path, videos: list[Path], out: Path, clips: Path) -> None:
    """Each video's vote and every member's logits with `bundle` on this machine, as JSON in `out`,
    with the process's peak RSS and the time (wall and CPU) spent decoding and in onnxruntime.
    Where `clips` (.npz) is missing the decoded clips are saved there; where it exists, the logits of
    its clips too (`logits_same_clips`: the graphs on the same input) and how far this machine's
    decoded pixels are from those (`pixel_diff`, in grey levels)."""
    import resource

    import numpy as np

    t0 = time.perf_counter()
    from picojepa.core.bundle import LOGITS
    from picojepa.runtime.ensemble import Ensemble

    ens = Ensemble.load(bundle, provider="cpu", threads=1)
    method = ens.check_vote(None)
    load_s = time.perf_counter() - t0
    theirs = dict(np.load(clips)) if clips.exists() else None
    rows, mine = [], {}
    for v in videos:
        c0 = time.process_time()
        d = ens.decode(v)
        if d.error:
            rows.append({"file": v.name, "error": d.error})
            continue
        t1, c1 = time.perf_counter(), time.process_time()
        logits = ens.member_outputs(d.clips, LOGITS)  # (M, K, C)
        infer_ms, infer_cpu_ms = (time.perf_counter() - t1) * 1e3, (time.process_time() - c1) * 1e3
        row = {"file": v.name, "label": ens.answer(d, method).label, "logits": logits[:, 0].tolist(),
               "infer_ms": infer_ms, "infer_cpu_ms": infer_cpu_ms, "decode_ms": d.decode_ms,
               "decode_cpu_ms": (c1 - c0) * 1e3, "frames": int(d.clips.shape[2])}
        mine[v.name] = d.clips
        if theirs is not None and v.name in theirs:
            row["logits_same_clips"] = ens.member_outputs(theirs[v.name], LOGITS)[:, 0].tolist()
            std = np.asarray(ens.bundle.clip.std, np.float32).reshape(1, 3, 1, 1, 1)
            row["pixel_diff"] = float((np.abs(d.clips - theirs[v.name]) * std).max() * 255)
        rows.append(row)
    if theirs is None:
        np.savez(clips, **mine)
    doc = {"machine": os.uname().machine, "vote": method, "members": ens.bundle.members, "load_s": load_s,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "videos": rows}
    out.write_text(json.dumps(doc, indent=1))


def run_answers(python: list[str], bundle: str, videos: list[str], out: tuple[Path, str], script: str,
                clips: str, timeout: float) -> dict:
    """`answers` run by `python`, writing to out[1] as it sees it, out[0] as this process does."""
    t0 = time.perf_counter()
    what = f"answers on {'arm64' if python[0] == 'chroot' else 'x86'}"
    sh([*python, script, "answers", "--out", out[1], "--clips", clips, bundle, *videos], what, timeout=timeout,
       env=CHROOT_ENV if python[0] == "chroot" else None)
    doc = json.loads(out[0].read_text())
    doc["wall_s"] = time.perf_counter() - t0
    return doc


def compare(x86: dict, arm: dict, atol: float) -> tuple[int, float, list[str]]:
    """(videos with the same vote, max |logit difference| of the graphs on the same clips, what differs)."""
    same, worst, bad = 0, 0.0, []
    for a, b in zip(x86["videos"], arm["videos"]):
        if a.get("error") or b.get("error"):
            bad.append(f"{a['file']}: x86 {a.get('error')!r}, arm64 {b.get('error')!r}")
            continue
        diff = max(abs(p - q) for ra, rb in zip(a["logits"], b["logits_same_clips"]) for p, q in zip(ra, rb))
        worst = max(worst, diff)
        same += a["label"] == b["label"]
        if a["label"] != b["label"] or diff > atol:
            bad.append(f"{a['file']}: x86 {a['label']} / arm64 {b['label']}, max |dlogit| {diff:.2e}")
    return same, worst, bad


def footprint(extras: list[str]) -> dict:
    """Bytes installed by each package of the runtime install (picojepa[extras] and everything it
    pulls in), bytecode caches left out, from each package's RECORD as installed here."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # a bare venv: pip's own copy
        from pip._vendor.packaging.requirements import Requirement

    sizes, todo = {}, [("picojepa", set(extras))]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in sizes:
            continue
        files = [dist.locate_file(f) for f in dist.files or [] if "__pycache__" not in str(f)]
        sizes[key] = {"version": dist.version, "bytes": sum(Path(f).stat().st_size for f in files if Path(f).is_file())}
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (wanted or {""})):
                todo.append((req.name, set(req.extras)))
    return {"machine": os.uname().machine, "python": sys.version.split()[0], "packages": sizes}


# ---- one arm64 node on the network ---------------------------------------------------------------

def network_vote(root: Path, net: Path, videos: list[Path], timeout: float) -> str:
    """nats-server and all members but one on x86, that one member served from the arm64 root;
    the network's votes must equal the in-process ones."""
    from picojepa.runtime.ensemble import Ensemble
    from picojepa.runtime.net.localnet import NatsServer, start_members
    from picojepa.runtime.net.natsconn import NatsOptions
    from picojepa.runtime.net.network import NetworkEnsemble

    local = Ensemble.load(net, provider="cpu", threads=1)
    members = local.bundle.vote_members
    arm_member, rest = members[0], members[1:]
    with NatsServer(host="127.0.0.1") as server:
        arm = subprocess.Popen(["chroot", str(root), f"{OPT}/.venv/bin/picojepa-serve", "--bundle",
                                f"{OPT}/check/bundle-net", "--member", arm_member, "--nats", server.url,
                                "--threads", "1", "--name", f"arm64/{arm_member}"],
                               env=CHROOT_ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        nodes = []
        try:
            nodes = start_members(net, rest, server.url)
            line = wait_serving(arm, timeout)
            log(f"arm64 node: {line}")
            with NetworkEnsemble.connect(net, NatsOptions((server.url,)), deadline_ms=timeout * 1e3) as ens:
                method = ens.check_vote(None)  # the bundle's default vote, which the nodes give
                remote = list(ens.predict_many(videos))
        finally:
            for n in nodes:
                n.stop()
            arm.terminate()
            try:
                arm.wait(30)
            except subprocess.TimeoutExpired:
                arm.kill()
    in_process = list(local.predict_many(videos, vote=method))
    answered = sum(arm_member in p.members for p in remote)
    same = sum(a.label == b.label for a, b in zip(remote, in_process) if not a.error)
    msg = (f"network vote: member {arm_member} on arm64 answered {answered}/{len(videos)}, the others on x86; "
           f"same {method} vote as in process on {same}/{len(videos)}")
    if answered != len(videos) or same != len(videos):
        raise CheckError(msg)
    return msg


def wait_serving(proc: subprocess.Popen, timeout: float) -> str:
    end = time.monotonic() + timeout
    for line in proc.stderr:  # the node prints 'serving member ...' once it listens
        if line.startswith("serving member"):
            return line.strip()
        if time.monotonic() > end:
            break
    raise CheckError(f"the arm64 node was not serving within {timeout:g} s (exit {proc.poll()})")


# ---- the command ---------------------------------------------------------------------------------

@click.group(invoke_without_command=True)
@click.option("--cache", default=REPO / ".arm-check", type=click.Path(path_type=Path), show_default=True,
              help="Where the arm64 root and the x86 bundle are kept between runs.")
@click.option("--videos", "n_videos", default=8, show_default=True, help="Held-out videos classified.")
@click.option("--atol", default=1e-3, show_default=True, help="Largest |logit difference| accepted.")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds allowed each emulated run.")
@click.pass_context
def main(ctx, cache, n_videos, atol, timeout):
    """Build or reuse the arm64 root, install the runtime, compare its answers with x86's."""
    if ctx.invoked_subcommand:
        return
    t_start = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unmount on the way out, as on Ctrl-C
    try:
        preflight()
        os.nice(19)  # emulation takes the CPUs for minutes: everything else goes first
        times = check(cache.resolve(), n_videos, atol, timeout)
    except CheckError as exc:
        click.echo(f"arm-check: error: {exc}", err=True)
        sys.exit(1)
    except subprocess.TimeoutExpired as exc:
        click.echo(f"arm-check: error: {' '.join(map(str, exc.cmd))[:120]} ran past {exc.timeout:g} s", err=True)
        sys.exit(1)
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    log(f"passed in {time.perf_counter() - t_start:.0f} s ({steps})")


def check(cache: Path, n_videos: int, atol: float, timeout: float) -> dict[str, float]:
    """The steps, each timed: root, runtime install, x86 bundle, answers on both sides, network."""
    root, times = cache / "root", {}

    def timed(name, step):
        t0 = time.perf_counter()
        out = step()
        times[name] = time.perf_counter() - t0
        return out

    timed("root", lambda: debootstrap(root))
    with Mounts(root):
        timed("install", lambda: install_runtime(root))
        fused, net, videos = timed("bundle", lambda: x86_bundle(cache))
        videos = spread(videos, n_videos)
        inside = stage(root, fused, net, videos)
        timed("answers", lambda: both_answers(root, cache, fused, videos, inside, atol, timeout))
        timed("footprint", lambda: footprints(root, cache))
        log(timed("network", lambda: network_vote(root, net, videos, timeout)))
    return times


def stage(root: Path, fused: Path, net: Path, videos: list[Path]) -> list[str]:
    """The bundles, the videos and this script copied into the root; the videos' paths there."""
    check = root / OPT.lstrip("/") / "check"
    shutil.rmtree(check, ignore_errors=True)
    for b, name in ((fused, "bundle"), (net, "bundle-net")):
        shutil.copytree(b, check / name)
    inside = []
    for v in videos:
        (check / "videos" / v.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(v, check / "videos" / v.parent.name / v.name)
        inside.append(f"{OPT}/check/videos/{v.parent.name}/{v.name}")
    shutil.copyfile(__file__, check / "arm_check.py")
    return inside


def both_answers(root: Path, cache: Path, fused: Path, videos: list[Path], inside: list[str], atol: float,
                 timeout: float) -> None:
    """The same videos through the same bundle on x86 and on emulated arm64; CheckError unless the
    votes are the same and the graphs, given x86's decoded clips, give the same logits within atol."""
    check = root / OPT.lstrip("/") / "check"
    x86_out = cache / "answers-x86.json"
    (check / "clips-x86.npz").unlink(missing_ok=True)
    x86 = run_answers([sys.executable], str(fused), [str(v) for v in videos], (x86_out, str(x86_out)),
                      __file__, str(check / "clips-x86.npz"), timeout)
    arm = run_answers(["chroot", str(root), f"{OPT}/.venv/bin/python"], f"{OPT}/check/bundle", inside,
                      (check / "answers-arm64.json", f"{OPT}/check/answers-arm64.json"),
                      f"{OPT}/check/arm_check.py", f"{OPT}/check/clips-x86.npz", timeout)
    (cache / "answers-arm64.json").write_text(json.dumps(arm, indent=1))
    same, worst, bad = compare(x86, arm, atol)
    e2e = max((abs(p - q) for a, b in zip(x86["videos"], arm["videos"]) if "logits" in a and "logits" in b
               for ra, rb in zip(a["logits"], b["logits"]) for p, q in zip(ra, rb)), default=0.0)
    pixels = max((b.get("pixel_diff", 0.0) for b in arm["videos"]), default=0.0)
    log(f"answers: same vote on {same}/{len(videos)} videos; logits on the same clips within {worst:.2e} "
        f"(tolerance {atol:g}); each side decoding its own: pixels within {pixels:.1f} grey levels, "
        f"logits within {e2e:.2e}; peak RSS x86 {x86['peak_rss_mib']:.0f} MiB, arm64 under qemu "
        f"{arm['peak_rss_mib']:.0f} MiB; wall x86 {x86['wall_s']:.1f} s, arm64 emulated {arm['wall_s']:.1f} s")
    if bad:
        raise CheckError(f"arm64 answers differ from x86's: {'; '.join(bad)}")


def footprints(root: Path, cache: Path) -> None:
    """The runtime install's size per package on both sides, into cache/footprint-*.json."""
    check = root / OPT.lstrip("/") / "check"
    sh([sys.executable, __file__, "footprint", "--out", str(cache / "footprint-x86.json")], "footprint on x86")
    in_root(root, [f"{OPT}/.venv/bin/python", f"{OPT}/check/arm_check.py", "footprint", "--out",
                   f"{OPT}/check/footprint-arm64.json"], "footprint on arm64")
    shutil.copyfile(check / "footprint-arm64.json", cache / "footprint-arm64.json")
    for side in ("x86", "arm64"):
        doc = json.loads((cache / f"footprint-{side}.json").read_text())
        total = sum(p["bytes"] for p in doc["packages"].values()) / 2**20
        torch = doc["packages"]["torch"]
        log(f"runtime install on {side}: {total:.0f} MiB, of which torch {torch['version']} {torch['bytes'] / 2**20:.0f} MiB")


def spread(videos: list[Path], n: int) -> list[Path]:
    """`n` videos taken in turn from each class folder."""
    by_class: dict[str, list[Path]] = {}
    for v in videos:
        by_class.setdefault(v.parent.name, []).append(v)
    out, queues = [], list(by_class.values())
    while len(out) < min(n, len(videos)):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


@main.command("answers")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--clips", required=True, type=click.Path(path_type=Path),
              help="Decoded clips (.npz): written when missing, else run through the graphs too.")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.argument("videos", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def answers_cmd(out, clips, bundle, videos):
    """The half that runs on each side: votes and logits as JSON."""
    answers(bundle, list(videos), out, clips)


@main.command("footprint")
@click.option("--out", required=True, type=click.Path(path_type=Path))
def footprint_cmd(out):
    """The runtime install's size per package, as JSON."""
    out.write_text(json.dumps(footprint(EXTRAS.split(",")), indent=1))


if __name__ == "__main__":
    main()

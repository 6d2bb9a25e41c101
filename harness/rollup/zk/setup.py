"""Reproducible Groth16 setup for the batch-commitment circuit (circom2 + snarkjs from npm).

    python -m harness.rollup.zk.setup            # build (or reuse) the cached setup, print a summary
    python -m harness.rollup.zk.setup --force    # rebuild even if cached

The setup is deterministic: the powers-of-tau ceremony and the circuit-specific
phase 2 each consist of exactly one *public beacon* contribution (fixed hex
strings below) and no random contribution, so two runs produce byte-identical
``.ptau``, ``.zkey``, verification key and Solidity verifier. The flip side,
stated plainly: the toxic waste is derivable from those public strings, so
anyone who reads this file can forge proofs. That is acceptable for a
measurement target (it costs exactly what a real verifier costs on L1) and is
unacceptable for a rollup that holds value; see README.md next to this file.

The result is cached under ``<cache_dir>/<circuit key>/`` where the key hashes
the circuit source, the tool versions and the ceremony parameters; a FileLock
makes concurrent pytest-xdist workers build it once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness import procs

ZK_DIR = Path(__file__).resolve().parent
REPO = ZK_DIR.parents[2]
NODE_MODULES = REPO / "node_modules"
CIRCUIT = ZK_DIR / "batch_commitment.circom"
CIRCUIT_NAME = "batch_commitment"
CIRCOMLIB = NODE_MODULES / "circomlib/circuits"
CIRCOM_BIN = NODE_MODULES / ".bin/circom2"
SNARKJS_BIN = NODE_MODULES / ".bin/snarkjs"
DEFAULT_CACHE_DIR = Path(".cache/zk")

#: 2^POWER >= constraints + public inputs + 1 (253 + 1 + 1 here). 2^9 keeps "prepare phase2" at ~9 s.
POWER = 9
#: Public beacon values (hex). Changing any of these changes the keys (and the cache key).
PTAU_BEACON = hashlib.sha256(b"claims-suite/rollup/powers-of-tau-beacon/v1").hexdigest()
ZKEY_BEACON = hashlib.sha256(b"claims-suite/rollup/phase2-beacon/v1").hexdigest()
BEACON_ITERATIONS_EXP = 10
STEP_TIMEOUT_S = 300.0


class ZkSetupError(RuntimeError):
    """A circom/snarkjs step failed; the message carries the command and its output tail."""


@dataclass(frozen=True)
class ZkArtifacts:
    """Paths of a finished setup and its summary (``info``: constraints, seconds per step, hashes)."""

    directory: Path
    wasm: Path
    zkey: Path
    vkey: Path
    verifier_sol: Path
    r1cs: Path
    info: dict

    @property
    def constraints(self) -> int:
        return int(self.info["constraints"])


def _package_version(name: str) -> str:
    path = NODE_MODULES / name / "package.json"
    if not path.is_file():
        raise ZkSetupError(f"{name} is not installed under {NODE_MODULES}: run `./run setup` (npm ci)")
    return json.loads(path.read_text())["version"]


def circuit_key() -> str:
    """Hash of everything that determines the keys: circuit source, tool versions, ceremony parameters."""
    h = hashlib.sha256()
    h.update(CIRCUIT.read_bytes())
    for name in ("circom2", "circomlib", "snarkjs"):
        h.update(f"{name}={_package_version(name)};".encode())
    h.update(f"power={POWER};ptau={PTAU_BEACON};zkey={ZKEY_BEACON};iter={BEACON_ITERATIONS_EXP}".encode())
    return h.hexdigest()[:16]


def resolve_cache_dir(cache_dir: Path | str) -> Path:
    """A relative cache dir is taken relative to the repository root (so every cwd shares one cache)."""
    path = Path(cache_dir)
    return path if path.is_absolute() else REPO / path


_live_tools: set[int] = set()
_tool_listeners: list = []
_tools_lock = threading.Lock()


def live_tool_pgids() -> list[int]:
    """Process groups of the tools :func:`run_tool` is running right now (each in its own session)."""
    with _tools_lock:
        return sorted(_live_tools)


def add_tool_listener(fn) -> None:
    """``fn()`` is called after a tool child starts and after it ends (the node rewrites children.json,
    so that a kill -9 of the node does not orphan a running snarkjs/solcjs)."""
    with _tools_lock:
        _tool_listeners.append(fn)


def remove_tool_listener(fn) -> None:
    with _tools_lock:
        if fn in _tool_listeners:
            _tool_listeners.remove(fn)


def _notify_tools() -> None:
    with _tools_lock:
        listeners = list(_tool_listeners)
    for fn in listeners:
        try:
            fn()
        except Exception:  # noqa: BLE001 - bookkeeping must never break a proof
            pass


def run_tool(
    cmd: list[str], timeout_s: float = STEP_TIMEOUT_S, stdin: bytes | None = None, cwd: Path = REPO
) -> tuple[bytes, float]:
    """Run a short-lived node tool in its own process group; returns (stdout, seconds). Raises on failure.

    While it runs its pgid is listed by :func:`live_tool_pgids` (and listeners are told)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    with _tools_lock:
        _live_tools.add(proc.pid)
    _notify_tools()
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise ZkSetupError(f"{' '.join(map(str, cmd))} did not finish in {timeout_s:.0f} s") from exc
    finally:
        if proc.poll() is None:
            procs.kill_group(proc.pid, proc=proc)
        with _tools_lock:
            _live_tools.discard(proc.pid)
        _notify_tools()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (out + err).decode(errors="replace")[-3000:]
        raise ZkSetupError(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{tail}")
    return out, seconds


def _build(target: Path) -> dict:
    """Compile the circuit and run the deterministic ceremony into ``target``. Returns the summary."""
    for tool in (CIRCOM_BIN, SNARKJS_BIN):
        if not tool.exists():
            raise ZkSetupError(f"{tool} not found: run `./run setup` (npm ci)")
    snark = [str(SNARKJS_BIN)]
    seconds: dict[str, float] = {}
    # circom2 (WASI) only sees paths below/above the cwd: run it from the repo root with relative paths.
    rel_circuit = os.path.relpath(CIRCUIT, REPO)
    rel_lib = os.path.relpath(CIRCOMLIB, REPO)
    _, seconds["compile"] = run_tool(
        [str(CIRCOM_BIN), rel_circuit, "--r1cs", "--wasm", "--O2", "-l", rel_lib, "-o", str(target)]
    )
    r1cs = target / f"{CIRCUIT_NAME}.r1cs"
    info_out, _ = run_tool(snark + ["r1cs", "info", str(r1cs)])
    constraints = _parse_r1cs_info(info_out.decode(errors="replace"))
    steps = [
        ("ptau_new", ["powersoftau", "new", "bn128", str(POWER), "pot_0.ptau"]),
        (
            "ptau_beacon",
            [
                "powersoftau",
                "beacon",
                "pot_0.ptau",
                "pot_1.ptau",
                PTAU_BEACON,
                str(BEACON_ITERATIONS_EXP),
                "-n=claims-suite ptau beacon",
            ],
        ),
        ("ptau_prepare_phase2", ["powersoftau", "prepare", "phase2", "pot_1.ptau", "pot_final.ptau"]),
        ("groth16_setup", ["groth16", "setup", str(r1cs), "pot_final.ptau", "circuit_0.zkey"]),
        (
            "zkey_beacon",
            [
                "zkey",
                "beacon",
                "circuit_0.zkey",
                "circuit_final.zkey",
                ZKEY_BEACON,
                str(BEACON_ITERATIONS_EXP),
                "-n=claims-suite phase2 beacon",
            ],
        ),
        ("export_vkey", ["zkey", "export", "verificationkey", "circuit_final.zkey", "verification_key.json"]),
        (
            "export_verifier",
            ["zkey", "export", "solidityverifier", "circuit_final.zkey", "Groth16Verifier.sol"],
        ),
    ]
    for name, args in steps:
        _, seconds[name] = run_tool(snark + args, cwd=target)
    for tmp in ("pot_0.ptau", "pot_1.ptau", "circuit_0.zkey"):
        (target / tmp).unlink(missing_ok=True)
    files = ["circuit_final.zkey", "verification_key.json", "Groth16Verifier.sol", f"{CIRCUIT_NAME}.r1cs"]
    return {
        "circuit": os.path.relpath(CIRCUIT, REPO),
        "circuit_key": circuit_key(),
        "power": POWER,
        "ptau_beacon": PTAU_BEACON,
        "zkey_beacon": ZKEY_BEACON,
        "beacon_iterations_exp": BEACON_ITERATIONS_EXP,
        "constraints": constraints["constraints"],
        "public_inputs": constraints["public_inputs"],
        "wires": constraints["wires"],
        "seconds": seconds,
        "setup_seconds_total": sum(seconds.values()),
        "sha256": {f: hashlib.sha256((target / f).read_bytes()).hexdigest() for f in files},
        "versions": {n: _package_version(n) for n in ("circom2", "circomlib", "snarkjs")},
    }


def _parse_r1cs_info(text: str) -> dict[str, int]:
    """Pull the counts out of ``snarkjs r1cs info`` (lines like ``[INFO]  snarkJS: # of Constraints: 253``)."""
    wanted = {"# of Constraints": "constraints", "# of Public Inputs": "public_inputs", "# of Wires": "wires"}
    found: dict[str, int] = {}
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # snarkjs colours its log lines
    for line in text.splitlines():
        for label, key in wanted.items():
            if label in line:
                found[key] = int(line.rsplit(":", 1)[1].strip())
    missing = set(wanted.values()) - set(found)
    if missing:
        raise ZkSetupError(f"could not read {sorted(missing)} from `snarkjs r1cs info`:\n{text}")
    return found


def _artifacts(directory: Path) -> ZkArtifacts:
    info = json.loads((directory / "setup.json").read_text())
    return ZkArtifacts(
        directory=directory,
        wasm=directory / f"{CIRCUIT_NAME}_js/{CIRCUIT_NAME}.wasm",
        zkey=directory / "circuit_final.zkey",
        vkey=directory / "verification_key.json",
        verifier_sol=directory / "Groth16Verifier.sol",
        r1cs=directory / f"{CIRCUIT_NAME}.r1cs",
        info=info,
    )


def ensure_setup(cache_dir: Path | str = DEFAULT_CACHE_DIR, force: bool = False) -> ZkArtifacts:
    """Return the cached setup, building it first if needed (≈15 s on 2 cores). Safe across processes.

    ``setup.json`` is written last (after an atomic rename of the build dir), so its presence means complete.
    """
    root = resolve_cache_dir(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    key = circuit_key()
    final = root / key
    with FileLock(str(root / f"{key}.lock"), timeout=3 * STEP_TIMEOUT_S):
        if force and final.exists():
            shutil.rmtree(final)
        if (final / "setup.json").is_file():
            return _artifacts(final)
        if final.exists():  # a half-finished directory from a crash
            shutil.rmtree(final)
        build = Path(tempfile.mkdtemp(prefix=f"{key}.build-", dir=root))
        try:
            info = _build(build)
            (build / "setup.json").write_text(json.dumps(info, indent=2, sort_keys=True))
            build.rename(final)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    return _artifacts(final)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    parser.add_argument("--force", action="store_true", help="rebuild even if a cached setup exists")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    art = ensure_setup(args.cache_dir, force=args.force)
    summary = {
        "directory": str(art.directory),
        "wall_seconds_this_call": round(time.perf_counter() - t0, 3),
        **{k: art.info[k] for k in ("circuit_key", "constraints", "public_inputs", "setup_seconds_total")},
        "sha256": art.info["sha256"],
    }
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

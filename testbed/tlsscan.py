"""The probe's TLS scan by sslyze, the scanner security testers use: every port's protocol versions and
cipher suites, compression, Heartbleed, CCS injection, ROBOT, renegotiation, the downgrade guard and the
key-exchange curves, each judged against what the testbed promises (TLS 1.2/1.3 only, ECDHE with AEAD).

sslyze pins an older cryptography than the nodes do, so it lives in a virtual environment of its own
(`make setup` puts it in `.venv/scanner`, at the version pinned under [tool.testbed] in pyproject.toml);
TESTBED_SSLYZE names another sslyze executable.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = "TESTBED_SSLYZE"
# No --sslv2: sslyze's SSL 2.0 client cannot present an EC client certificate, and without one the mTLS ports
# refuse it before any version is tried (gRPC's BoringSSL has no SSL 2.0 code at all).
COMMANDS = ("--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", "--compression",
            "--heartbleed", "--openssl_ccs", "--robot", "--reneg", "--fallback", "--elliptic_curves")
SCAN_TIMEOUT = 180.0  # seconds for the whole scan of one trust domain's ports
OLD_VERSIONS = {"ssl_3_0_cipher_suites": "SSL 3.0",
                "tls_1_0_cipher_suites": "TLS 1.0", "tls_1_1_cipher_suites": "TLS 1.1"}
MIN_CURVE_BITS = 256
CURVE_BITS = {"X25519": 253, "X448": 448, "secp256r1": 256, "prime256v1": 256, "secp384r1": 384, "secp521r1": 521}
RULE = "TLS 1.2/1.3, ECDHE with AEAD (sslyze)"


def find_sslyze() -> Path | None:
    """The sslyze executable: TESTBED_SSLYZE, else the scanner environment beside this Python, else PATH."""
    for candidate in (os.environ.get(ENV), Path(sys.prefix) / "scanner" / "bin" / "sslyze", shutil.which("sslyze")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def scan(sslyze: Path, groups: list[tuple[object, list]]) -> dict[str, dict | str]:
    """Scan every node with the client certificate of its group (cert, nodes), all groups at once; node address
    (host:port) → sslyze's scan result, or why there is none."""
    scratch = Path(tempfile.mkdtemp(prefix="sslyze-"))
    running, results = [], {}
    try:
        for i, (cert, nodes) in enumerate(groups):
            targets, out = scratch / f"targets-{i}.txt", scratch / f"scan-{i}.json"
            # host:port{ip}: the node's DNS name is sent as SNI while the connection goes to its address
            targets.write_text("".join(f"{n.host_name}:{n.address.rsplit(':', 1)[1]}{{{n.address.rsplit(':', 1)[0]}}}\n"
                                       for n in nodes))
            proc = subprocess.Popen([str(sslyze), "--quiet", "--mozilla_config", "disable", "--cert", str(cert.cert),
                                     "--key", str(cert.key), *COMMANDS, "--targets_in", str(targets),
                                     "--json_out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            running.append((proc, out, nodes))
        for proc, out, nodes in running:
            try:
                _, err = proc.communicate(timeout=SCAN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                results.update({n.address: f"sslyze did not finish in {SCAN_TIMEOUT:.0f} s" for n in nodes})
                continue
            try:
                document = json.loads(out.read_text())
            except (OSError, ValueError):
                tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
                results.update({n.address: f"sslyze failed: {tail[0]}" for n in nodes})
                continue
            by_port = {s["server_location"]["port"]: s for s in document.get("server_scan_results", [])}
            for n in nodes:
                server = by_port.get(int(n.address.rsplit(":", 1)[1]))
                if server is None or server.get("connectivity_status") != "COMPLETED":
                    why = (server or {}).get("connectivity_error_trace") or "not scanned"
                    results[n.address] = f"sslyze could not connect: {str(why).strip().splitlines()[-1][:200]}"
                else:
                    results[n.address] = server["scan_result"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def _result(scan_result: dict, command: str) -> dict | None:
    entry = scan_result.get(command) or {}
    return entry.get("result") if entry.get("status") == "COMPLETED" else None


def _suites(result: dict | None) -> list[str]:
    return [s["cipher_suite"]["name"] for s in (result or {}).get("accepted_cipher_suites", [])]


def judge(scan_result: dict) -> list[tuple[str, str, str, bool | None]]:
    """What a well-run port shows in an sslyze scan, against what this one showed: (case, expected, actual, ok);
    ok is None when sslyze could not run that check."""
    cases = []
    old = {label: _suites(_result(scan_result, cmd)) for cmd, label in OLD_VERSIONS.items()}
    missing = [label for cmd, label in OLD_VERSIONS.items() if _result(scan_result, cmd) is None]
    accepted = [f"{label}: {', '.join(s)}" for label, s in old.items() if s]
    cases.append(("sslyze: SSL 3.0, TLS 1.0, TLS 1.1", "no suite accepted",
                  "; ".join(accepted) or ("not checked: " + ", ".join(missing) if missing else "none accepted"),
                  None if missing and not accepted else not accepted))
    tls12 = _result(scan_result, "tls_1_2_cipher_suites")
    weak = [s for s in _suites(tls12) if "ECDHE" not in s or not ("GCM" in s or "CHACHA20" in s)]
    cases.append(("sslyze: TLS 1.2 suites", "ECDHE with AEAD only",
                  "not checked" if tls12 is None else ", ".join(weak) or f"{len(_suites(tls12))} suites, all ECDHE+AEAD",
                  None if tls12 is None else not weak))
    tls13 = _result(scan_result, "tls_1_3_cipher_suites")
    cases.append(("sslyze: TLS 1.3", "supported", "not checked" if tls13 is None else
                  f"{len(_suites(tls13))} suites" if _suites(tls13) else "not supported",
                  None if tls13 is None else bool(_suites(tls13))))
    flaws = {
        "compression": ("tls_compression", lambda r: r["supports_compression"]),
        "Heartbleed": ("heartbleed", lambda r: r["is_vulnerable_to_heartbleed"]),
        "CCS injection": ("openssl_ccs_injection", lambda r: r["is_vulnerable_to_ccs_injection"]),
        "ROBOT": ("robot", lambda r: r["robot_result"].startswith("VULNERABLE")),
        "insecure renegotiation": ("session_renegotiation", lambda r: not r["supports_secure_renegotiation"]
                                   or r["is_vulnerable_to_client_renegotiation_dos"]),
        "no downgrade guard (TLS_FALLBACK_SCSV)": ("tls_fallback_scsv", lambda r: not r["supports_fallback_scsv"]),
    }
    found, unchecked = [], []
    for label, (command, flawed) in flaws.items():
        result = _result(scan_result, command)
        if result is None:
            unchecked.append(label)
        elif flawed(result):
            found.append(label)
    cases.append(("sslyze: known TLS flaws", "none of " + ", ".join(flaws), ", ".join(found) or
                  ("not checked: " + ", ".join(unchecked) if unchecked else "none"),
                  None if unchecked and not found else not found))
    curves = _result(scan_result, "elliptic_curves")
    names = [c["name"] for c in (curves or {}).get("supported_curves", [])]
    small = [n for n in names if CURVE_BITS.get(n, 0) < MIN_CURVE_BITS and n != "X25519"]
    cases.append(("sslyze: key-exchange curves", f"X25519 or ≥ {MIN_CURVE_BITS} bits",
                  "not checked" if curves is None else ", ".join(small) or ", ".join(names),
                  None if curves is None else not small))
    return cases

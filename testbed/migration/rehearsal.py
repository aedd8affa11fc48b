"""`testbed migrate M --to SITE`: the government-cloud migration rehearsal as named, timed steps (DESIGN §7).

freeze → export → transfer → load → verify → conformance → cut over → decommission, each step recorded with
its start, end, result and figures. The conformance step runs the suite's `rules` profile against the target nodes
(testbed/migration/conformance.py): a failed case keeps the old site (rolled back). With a vendor layout (`--vendor-layout intermediate`), the old
site's register leaves in a foreign vendor's export (testbed/migration/intermediate/: CP932 or UTF-8, the vendor's
外字 in the user-defined area with its 外字 table), and a 文字同定 step at the target identifies every 外字 before
the load: one left without a standard character stops the run unless it is named as accepted. A failed verify (or any step before the cut over) rolls back: the target is wiped
and the old site re-opens as it was, each part of that checked and reported on its own (a rollback that could
not restore something says what, and is never reported as done). Faults can be injected to see the right step
catch them. One migration of a network runs at a time (MigrationLock): a second one is refused at once,
naming the holder.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import getpass
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from cryptography import x509

from nodes.refusal import rule_of
from nodes.tls import ClientCert
from protos import common_pb2, migration_pb2, migration_pb2_grpc, kizon_pb2_grpc
from testbed import processes
from testbed.client import channel, console_cert
from nodes import characters as chars
from testbed.migration import conformance, intermediate, layout, sftp

INJECTIONS = {
    "corrupt-file": "a byte of history.csv changed at the target after the transfer (caught by the arrival digest check; sent again)",
    "drop-record": "one 住民票 entry left out of the export, its manifest made to match (caught by verify; rolled back)",
    "interrupt-transfer": "the SFTP connection dropped halfway (the transfer resumes where it stopped)",
    "slow-link": "the link to the target limited to a quarter of the export per second (the transfer reports its rate)",
}
FREEZE_REASON = "移行中"
VENDOR = "vendor-migration"
CALL_TIMEOUT = 600.0
TRANSPORT_TRIES = 3  # times a step's call is made when gRPC could not deliver it (no rule refused it)
TRANSPORT_PAUSE = 1.0  # seconds before the second try, twice that before the third
BATCH = 1000  # migration items per message of an import
SFTP_MARKER = b"testbed.migration.sftp"  # in the SFTP server's command line (also confined)
VENDOR_FOLDER = "vendor"  # where a vendor layout's files go, beside the testbed layout's (each has its manifest)
SFTP_TIMEOUT = 15.0  # seconds the SFTP server has to bind its port and publish it
log = logging.getLogger("testbed.migrate")


@dataclass
class Step:
    """One named step of the rehearsal."""

    name: str
    started: str = ""
    ended: str = ""
    seconds: float = 0.0
    result: str = "not run"  # ok, recovered, failed, rolled back, not run
    message: str = ""
    figures: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)  # (check, result, detail) of verify


class StepFailed(Exception):
    """A step that cannot go on: names the step and what is wrong."""


class Locked(StepFailed):
    """Another migration of the same network is running."""


class MigrationLock:
    """One migration of a network at a time: migrations/migrate.lock names its holder (pid, who, what, since) and
    is held with flock while the holder lives, so taking it is atomic and the lock of a holder that died (even
    by kill -9) is free to take over; the file then still names the dead holder, which is reported."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "migrations" / "migrate.lock"
        self.fd: int | None = None

    def acquire(self, holder: dict) -> dict | None:
        """Take the lock for holder, or raise Locked naming who holds it; the dead holder taken over, if any."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                current = self._read(fd)
                os.close(fd)
                raise Locked(self.refusal(current)) from None
            if self._same_file(fd):
                break
            os.close(fd)  # the file was replaced while we waited for it: lock the one that is there now
        previous = self._read(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder, ensure_ascii=False).encode(), 0)
        self.fd = fd
        return previous or None  # a holder still named in an unlocked file is one that died holding it

    def release(self) -> None:
        """Give the lock up (the file stays, emptied: removing it would let two holders lock two files)."""
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing releases the flock
            self.fd = None

    def _same_file(self, fd: int) -> bool:
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            return {"pid": "?", "by": "unreadable lock file"}

    def refusal(self, holder: dict) -> str:
        """One line: who holds the lock, and what to do."""
        if not holder:
            return (f"migration rule: one migration of a network at a time, and another has just taken {self.path}; "
                    "wait until it has finished (its report gives the result), then run again if needed")
        return (f"migration rule: one migration of a network at a time: pid {holder.get('pid')} "
                f"({holder.get('by', '?')}) has been moving {holder.get('municipality', '?')} to "
                f"{holder.get('site', '?')} since {holder.get('since', '?')} (run {holder.get('run', '?')}, lock "
                f"{self.path}); wait until it has finished (its report gives the result), then run again if needed")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Rehearsal:
    """One rehearsal of moving a municipality's kizon and atena to a target site."""

    def __init__(self, network, municipality: str, site: str, inject: tuple[str, ...] = (), vendor: str = VENDOR,
                 vendor_layout: str | None = None, encoding: str = "cp932", accept_unmapped: tuple[str, ...] = (),
                 expected_failures: dict[str, str] | None = None):
        self.network, self.municipality, self.site, self.inject, self.vendor = network, municipality, site, inject, vendor
        self.vendor_layout, self.encoding = vendor_layout, encoding  # (None: the testbed's own layout carries it all)
        self.accept_unmapped = {_code_point(c) for c in accept_unmapped}  # unidentified 外字 the run carries as they are
        self.identified = None  # the vendor export as 文字同定 left it (intermediate.Import)
        self.expected_failures = expected_failures or {}  # conformance cases the team knows the target fails
        self.resident = ""  # a 住民票コード the load put at the target: the conformance suite's person there
        topology = network.topology
        self.old = {n.kind: n for n in topology.nodes if n.municipality == municipality and n.kind in ("kizon", "atena")}
        self.new = {n.kind: n for n in topology.targets if n.municipality == municipality and n.site == site}
        self.run_id = f"{municipality}-{site}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        self.folder = network.state_dir / "migrations" / self.run_id
        self.export_dir = self.folder / "export"  # at the old site
        self.inbox = network.state_dir / "sites" / site / "inbox"  # at the target site (the SFTP server's root)
        self.steps: list[Step] = []
        self.downtime = {"start": "", "end": "", "seconds": None}
        self.console = console_cert(network.pki, "kizon")
        self._sftp_record = network.state_dir / "run" / f"sftp-{site}.json"  # (not NAME.pid: that is a node's)
        self.took_over: dict | None = None  # the dead holder whose lock this run took over

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self) -> dict:
        """Every step in order; a failure before the cut over rolls back. The report (also when it failed).
        Raises Locked at once when another migration of the network runs."""
        lock = MigrationLock(self.network.state_dir)
        self.took_over = lock.acquire({"pid": os.getpid(), "by": os.environ.get("TESTBED_OPERATOR") or
                                       f"user {getpass.getuser()}", "municipality": self.municipality,
                                       "site": self.site, "run": self.run_id, "since": _now()})
        if self.took_over:
            log.warning("took over the migration lock of pid %s (%s, run %s), which is no longer running",
                        self.took_over.get("pid"), self.took_over.get("by"), self.took_over.get("run"))
        try:
            return self._run()
        finally:
            lock.release()

    def _run(self) -> dict:
        started = time.monotonic()
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_ready()
        plan = [("freeze", self.freeze), ("export", self.export), ("transfer", self.transfer)]
        plan += [("文字同定", self.identify)] if self.vendor_layout else []
        plan += [("load", self.load), ("verify", self.verify), ("conformance", self.conformance), ("cut over", self.cut_over),
                 ("decommission", self.decommission)]
        failed = None
        try:
            for name, action in plan:
                step = Step(name)
                self.steps.append(step)
                step.started, begun = _now(), time.monotonic()
                log.info("step %s: started", name)
                try:
                    action(step)
                    step.result = step.result if step.result != "not run" else "ok"
                except StepFailed as exc:
                    step.result, step.message = "failed", str(exc)
                    failed = step
                finally:
                    step.ended, step.seconds = _now(), round(time.monotonic() - begun, 3)
                    log.info("step %s: %s in %.2f s %s", name, step.result, step.seconds, step.message)
                if failed:
                    break
        finally:
            self._stop_sftp()
        if failed is not None and failed.name not in ("decommission",):
            self.rollback(failed)
        return self.report(time.monotonic() - started, failed)

    def _check_ready(self) -> None:
        if set(self.new) != {"kizon", "atena"} or set(self.old) != {"kizon", "atena"}:
            sites = ", ".join(self.network.topology.sites(self.municipality)) or "none"
            raise StepFailed(f"the topology names no kizon and atena of {self.municipality} at site {self.site} "
                             f"(sites named for it: {sites})")
        down = [n.name for n in [*self.old.values(), *self.new.values()] if not n.external and not self.network.pid(n.name)]
        if down:
            raise StepFailed(f"{', '.join(down)} not running; run `testbed up` first")

    def _stub(self, node, stub=migration_pb2_grpc.MigrationStub):
        return stub(channel(node, self.console))

    # -- freeze ----------------------------------------------------------------------------------------------
    def freeze(self, step: Step) -> None:
        """Close the counters of the old site (kizon first, then atena, so that kizon's feed drains into it)."""
        for kind in ("kizon", "atena"):
            state = self._call(self._stub(self.old[kind]).Freeze, migration_pb2.FreezeRequest(reason=FREEZE_REASON),
                               f"freeze {self.old[kind].name}")
            step.figures[f"{kind}_records"] = state.records
            if kind == "kizon":
                self.downtime["start"] = state.since
        step.figures["frozen_since"] = self.downtime["start"]
        for kind in ("kizon", "atena"):
            state = self._call(self._stub(self.new[kind]).GetSiteState, migration_pb2.FreezeRequest(), "target state")
            if state.records:
                raise StepFailed(f"the target {self.new[kind].name} already holds {state.records} records; a rehearsal "
                                 "starts from an empty target")

    # -- export ----------------------------------------------------------------------------------------------
    def export(self, step: Step) -> None:
        """The register in the migration layout, at the old site: files and a manifest with counts and digests."""
        self.export_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        items = self._export_items(self.old)
        if "drop-record" in self.inject:
            history = [i for i, (_, item) in enumerate(items) if item.WhichOneof("item") == "history"]
            dropped = items.pop(history[len(history) // 2])[1].history
            step.figures["injected"] = f"dropped 住民票 entry {dropped.atena_number}/{dropped.history_number}"
        meta = {"municipality": self.municipality, "source_site": "office", "target_site": self.site,
                "created_at": _now(), "frozen_since": self.downtime["start"]}
        if self.vendor_layout:  # the 住民票 in the vendor's layout; the rest (採番, 交付履歴, 宛名) in the testbed's
            history = [item.history for _, item in items if item.WhichOneof("item") == "history"]
            items = [(kind, item) for kind, item in items if item.WhichOneof("item") != "history"]
            # (the vendor's table lists every private-use 外字 its register holds, identified or not)
            from scenarios.characters import vendor_table  # (Faker-free, but only a vendor layout needs it)
            table = intermediate.with_register_gaiji(vendor_table(self.municipality), history)
            try:
                vendor = intermediate.write_export(self.export_dir / VENDOR_FOLDER, self.municipality, history, table,
                                                   self.encoding)
            except intermediate.VendorExportError as exc:
                raise StepFailed(f"the register cannot be written in the vendor's layout: {exc}") from None
            meta["register"] = f"{VENDOR_FOLDER}/ ({vendor['layout']} {vendor['version']}, {vendor['文字コード']})"
            step.figures.update({f"{VENDOR_FOLDER}/{e['name']}": e["records"] for e in vendor["files"]
                                 if not e["name"].startswith("コード表")})
        entries = [layout.write_file(self.export_dir, spec, layout.rows_of(items, spec)) for spec in layout.FILES]
        layout.write_manifest(self.export_dir, entries, meta)
        step.figures.update({e["name"]: e["records"] for e in entries if e["records"] or not self.vendor_layout})
        step.figures["bytes"] = sum(p.stat().st_size for p in self.export_dir.rglob("*") if p.is_file())

    def _export_items(self, nodes: dict) -> list[tuple[str, migration_pb2.MigrationItem]]:
        items = []
        for kind in ("kizon", "atena"):
            export = self._stub(nodes[kind]).Export
            # (read whole in each try: an export is a read, so one gRPC could not deliver is made again from the start)
            batches = self._call(lambda request, timeout: list(export(request, timeout=timeout)),
                                 migration_pb2.MigrationExportRequest(), f"export from {nodes[kind].name}")
            items += [(kind, item) for batch in batches for item in batch.items]
        return items

    # -- transfer --------------------------------------------------------------------------------------------
    def transfer(self, step: Step) -> None:
        """SFTP from the old site to the target's inbox, resumable; every file checked against the manifest."""
        keys = self.network.state_dir / "pki" / "ssh"
        vendor_key = sftp.ensure_key(keys / "vendors" / self.vendor / "id_ed25519")
        host_key = sftp.ensure_key(keys / "sites" / self.site / "host_key")
        vendors = self.network.state_dir / "sites" / self.site / "vendors"
        vendors.mkdir(mode=0o700, parents=True, exist_ok=True)
        (vendors / f"{self.vendor}.pub").write_bytes(vendor_key.export_public_key())
        address = self._start_sftp()
        manifest = layout.read_manifest(self.export_dir)
        files = [self.export_dir / f["name"] for f in manifest["files"]] + [self.export_dir / layout.MANIFEST]
        vendor_files = []
        if self.vendor_layout:  # (into a folder of their own at the target: the two manifests share a name)
            listed = intermediate.read_manifest(self.export_dir / VENDOR_FOLDER)
            vendor_files = [self.export_dir / VENDOR_FOLDER / f["name"] for f in listed["files"]] + \
                [self.export_dir / VENDOR_FOLDER / intermediate.MANIFEST]
        total = sum(p.stat().st_size for p in files + vendor_files)
        link = sftp.Link()
        if "interrupt-transfer" in self.inject:
            link.drop_after = total // 2
        if "slow-link" in self.inject:
            link.rate = max(total // 4, 32 * 1024)
            step.figures["link_rate_bytes_per_s"] = link.rate
        host_pub = host_key.export_public_key()
        sent = asyncio.run(sftp.send(address, self.vendor, vendor_key, host_pub, files, self.run_id, link))
        if vendor_files:
            more = asyncio.run(sftp.send(address, self.vendor, vendor_key, host_pub, vendor_files,
                                         f"{self.run_id}/{VENDOR_FOLDER}", link))
            sent.bytes, sent.attempts, sent.seconds = sent.bytes + more.bytes, sent.attempts + more.attempts, \
                sent.seconds + more.seconds
            sent.resumed += more.resumed
            files = files + vendor_files
        if "corrupt-file" in self.inject:
            target = self.inbox / self.run_id / "history.csv"
            data = bytearray(target.read_bytes())
            data[len(data) // 2] ^= 0x20
            target.write_bytes(bytes(data))
            step.figures["injected"] = "history.csv corrupted at the target after arrival"
        bad = self._arrival_check(manifest)
        resent = []
        if bad:  # send the damaged files again, from the start
            for name in bad:
                (self.inbox / self.run_id / name).unlink()
            again = asyncio.run(sftp.send(address, self.vendor, vendor_key, host_pub,
                                          [self.export_dir / n for n in bad], self.run_id))
            resent, sent.bytes = bad, sent.bytes + again.bytes
            still = self._arrival_check(manifest)
            if still:
                raise StepFailed(f"digest still differs after sending again: {', '.join(still)}")
            step.result = "recovered"
            step.message = f"digest mismatch on arrival ({', '.join(bad)}): sent again, now equal"
        if sent.resumed:
            step.result = "recovered"
            step.message = (step.message + "; " if step.message else "") + f"connection dropped: resumed " \
                                                                          f"{'; '.join(sent.resumed)}"
        step.figures.update({"files": len(files), "bytes": sent.bytes, "attempts": sent.attempts,
                             "seconds": round(sent.seconds, 3), "resent": resent,
                             "mb_per_s": round(total / max(sent.seconds, 1e-6) / 1e6, 2)})
        if link.rate:
            step.message = (step.message + "; " if step.message else "") + \
                f"slow link: {step.figures['mb_per_s']} MB/s, {sent.seconds:.1f} s for {total:,} bytes"

    def _arrival_check(self, manifest: dict) -> list[str]:
        """The files whose size or SHA-256 at the target differs from the manifest."""
        bad = []
        for f in manifest["files"]:
            path = self.inbox / self.run_id / f["name"]
            if not path.exists() or path.stat().st_size != f["bytes"] or layout.file_digest(path) != f["sha256"]:
                bad.append(f["name"])
        return bad

    def _start_sftp(self) -> str:
        """The target site's SFTP server, a process of its own (confined wherever the machine allows it); its address
        once it has bound a port and published it."""
        program, ready = sftp.server_command(self.network.state_dir, self.site)
        processes.stop_recorded(self._sftp_record, SFTP_MARKER)  # (one a crashed rehearsal left)
        try:
            started = processes.start_helper(program, self._sftp_record, self.network.log_file(f"sftp-{self.site}"),
                                             SFTP_MARKER, what=f"the SFTP server of {self.site}",
                                             ready=processes.port_file(ready), timeout=SFTP_TIMEOUT)
        except processes.HelperFailed as exc:
            raise StepFailed(str(exc)) from None
        return f"127.0.0.1:{started.port}"

    def _stop_sftp(self) -> None:
        processes.stop_recorded(self._sftp_record, SFTP_MARKER)

    # -- 文字同定 --------------------------------------------------------------------------------------------
    def identify(self, step: Step) -> None:
        """The vendor's export read at the target and held to its layout, every 外字 identified through the vendor's
        外字 table; a 外字 left without a standard character stops the run unless the run names it as accepted."""
        try:
            self.identified = intermediate.read_export(self.inbox / self.run_id / VENDOR_FOLDER)
        except intermediate.VendorExportError as exc:
            raise StepFailed(f"the vendor's export does not follow its layout: {exc}") from None
        work = self.identified.characters
        step.figures.update({"records": len(self.identified.records), "外字 identified": work.mapped,
                             "外字 unmapped": work.unmapped, "records with 外字": work.records_with_gaiji,
                             "文字コード": self.identified.manifest.get("文字コード", "")})
        refused = [c for c in work.unmapped_codes if c not in self.accept_unmapped]
        accepted = [c for c in work.unmapped_codes if c in self.accept_unmapped]
        for use in work.examples:
            state = "identified" if use.standard else ("accepted" if use.code in self.accept_unmapped else "unmapped")
            step.checks.append((f"外字 U+{ord(use.code):04X} ({use.cp932}) {use.description}",
                                "failed" if state == "unmapped" else "ok",
                                f"{state}{' as ' + use.standard if use.standard else ''}: {use.count} in "
                                f"{', '.join(sorted(use.items))}; e.g. {', '.join('/'.join(r) for r in use.records[:3])}"))
        if accepted:
            step.message = f"carried as they are (accepted): {', '.join(f'U+{ord(c):04X}' for c in accepted)}"
        if refused:
            users = sum(u.count for u in work.examples if u.code in refused)
            raise StepFailed(f"文字同定: {len(refused)} 外字 without a standard character ({users} uses): "
                             f"{', '.join(f'U+{ord(c):04X}' for c in refused)}; identify them in the vendor's 外字 table, "
                             "or name them with --accept-unmapped CODE to carry them as they are")

    def characters(self) -> dict | None:
        """The character work of the run for its report: identified, unmapped and what a JIS X 0213 receiver gets as
        代替文字 (nodes/characters.py), each with examples; None without a vendor export."""
        if self.identified is None:
            return None
        work = self.identified.characters
        def example(use):
            return {"code": f"U+{ord(use.code):04X} ({use.cp932})", "description": use.description,
                    "standard": use.standard, "count": use.count,
                    "records": ["/".join(r) for r in use.records]}
        substituted: dict[str, dict] = {}
        records_substituted = 0
        for record in self.identified.records:
            hit = False
            for item in ("name_kanji", "address", "former_surname_kanji"):
                found = chars.substitute(getattr(record, item))
                for position in found.positions:
                    char = chars.characters(getattr(record, item))[position - 1]
                    entry = substituted.setdefault(char, {"code": " ".join(f"U+{ord(c):04X}" for c in char),
                                                          "description": chars.kind(char), "count": 0, "records": [],
                                                          "standard": chars.substitute_char(char) or chars.GETA})
                    entry["count"] += 1
                    if len(entry["records"]) < 5:
                        entry["records"].append(f"{record.atena_number}/{record.resident_code}")
                    hit = True
            records_substituted += hit
        mapped = [u for u in work.examples if u.standard]
        unmapped = [u for u in work.examples if not u.standard]
        return {"summary": f"{work.mapped} uses of {len(mapped)} vendor 外字 identified, {work.unmapped} uses of "
                           f"{len(unmapped)} left without a standard character"
                           + (f" (accepted: {', '.join(f'U+{ord(c):04X}' for c in sorted(self.accept_unmapped))})"
                              if self.accept_unmapped else "") + f"; {records_substituted} records a JIS X 0213 "
                           "receiver gets with 代替文字",
                "mapped": {"characters": work.mapped, "records": work.records_with_gaiji,
                           "examples": [example(u) for u in mapped]},
                "unmapped": {"characters": work.unmapped, "records": len({r for u in unmapped for r in u.records}),
                             "examples": [example(u) for u in unmapped]},
                "substituted": {"characters": sum(e["count"] for e in substituted.values()),
                                "records": records_substituted, "examples": list(substituted.values())[:20]}}

    # -- load ------------------------------------------------------------------------------------------------
    def load(self, step: Step) -> None:
        """The files at the target, checked against the layout, into the target kizon and atena by their services."""
        arrived = self.inbox / self.run_id
        try:
            layout.read_manifest(arrived)
            kizon_items, atena_items, households = layout.items_from_files(arrived)
        except layout.LayoutError as exc:
            raise StepFailed(f"the export does not follow the layout: {exc}") from None
        if self.identified is not None:  # the 住民票 as 文字同定 left them (the vendor's 世帯.csv was held to them)
            history = [migration_pb2.MigrationItem(history=r) for r in self.identified.records]
            kizon_items = [i for i in kizon_items if i.WhichOneof("item") == "counter"] + history + \
                [i for i in kizon_items if i.WhichOneof("item") not in ("counter", "history")]
            households = layout.household_rows(self.identified.records)
        derived = layout.household_rows([i.history for i in kizon_items if i.WhichOneof("item") == "history"])
        if derived != households:
            raise StepFailed(f"households.csv does not agree with history.csv ({len(households)} households listed, "
                             f"{len(derived)} derived)")
        step.figures["households"] = len(households)
        self.resident = next((i.history.resident_code for i in kizon_items if i.WhichOneof("item") == "history"), "")
        for kind, items in (("kizon", kizon_items), ("atena", atena_items)):
            batches = (migration_pb2.MigrationBatch(items=items[i:i + BATCH]) for i in range(0, len(items), BATCH))
            summary = self._call(self._stub(self.new[kind]).Import, batches, f"import into {self.new[kind].name}")
            step.figures[kind] = {k: v for k, v in ((f.name, getattr(summary, f.name)) for f in summary.DESCRIPTOR.fields) if v}

    # -- verify ----------------------------------------------------------------------------------------------
    def verify(self, step: Step) -> None:
        """Counts per file, every record old ↔ new by digest, and the 整合性確認 of the new kizon."""
        old, new = self._digests(self.old), self._digests(self.new)
        manifest = layout.read_manifest(self.inbox / self.run_id)
        for spec in layout.FILES:
            if spec.name == "households.csv":  # derived from history.csv; checked against it when loaded
                continue
            old_rows, new_rows = old.get(spec.name, {}), new.get(spec.name, {})
            listed = next(f["records"] for f in manifest["files"] if f["name"] == spec.name)
            if spec.name == "history.csv" and self.identified is not None:  # (carried in the vendor's 個人.csv)
                listed = len(self.identified.records)
            ok = len(old_rows) == listed == len(new_rows)
            step.checks.append((f"count {spec.name}", "ok" if ok else "failed",
                                f"old {len(old_rows)}, file {listed}, new {len(new_rows)}"))
            missing = sorted(k for k in old_rows if k not in new_rows)
            extra = sorted(k for k in new_rows if k not in old_rows)
            differ = sorted(k for k in old_rows if k in new_rows and old_rows[k] != new_rows[k])
            detail = "; ".join(part for part in (
                f"missing at the new site: {_keys(missing)}" if missing else "",
                f"only at the new site: {_keys(extra)}" if extra else "",
                f"different: {_keys(differ)}" if differ else "") if part) or f"{len(old_rows)} records equal"
            step.checks.append((f"records {spec.name}", "failed" if missing or extra or differ else "ok", detail))
        report = self._call(self._stub(self.new["kizon"], kizon_pb2_grpc.KizonStub).CheckConsistency,
                            common_pb2.ConsistencyRequest(municipality_code=self.municipality),
                            f"整合性確認 of {self.new['kizon'].name}")
        differences = [f"{d.resident_code}@{d.node}: {','.join(d.items)}" for d in report.differences]
        step.checks.append(("整合性確認 new kizon ↔ cs, prefecture, national",
                            "failed" if differences else "ok",
                            f"{report.records_kizon} records; " + ("; ".join(differences[:5]) or "no differences")))
        step.figures["records_compared"] = sum(len(d) for d in old.values())
        failed = [c for c in step.checks if c[1] != "ok"]
        if failed:
            raise StepFailed("verify failed: " + "; ".join(f"{c[0]}: {c[2]}" for c in failed))

    def _digests(self, nodes: dict) -> dict[str, dict[str, bytes]]:
        """file → key → digest of every record the nodes hold (computed by each node from its stored bytes)."""
        found: dict[str, dict[str, bytes]] = {}
        for kind in ("kizon", "atena"):
            try:
                for batch in self._stub(nodes[kind]).Digests(migration_pb2.MigrationExportRequest(), timeout=CALL_TIMEOUT):
                    for d in batch.digests:
                        found.setdefault(d.file, {})[d.key] = d.digest
            except grpc.RpcError as exc:
                raise StepFailed(f"digests of {nodes[kind].name}: {exc.code().name}: {exc.details()}") from None
        return found

    # -- conformance -----------------------------------------------------------------------------------------
    def conformance(self, step: Step) -> None:
        """The suite's rules profile against the target kizon and atena; a failure not listed as expected stops the
        move (rolled back) and the report lists the failed cases."""
        step.checks, step.figures, failed = conformance.run(self.network, self.new, self.resident,
                                                            self.expected_failures)
        if failed:
            raise StepFailed(f"the target fails {len(failed)} conformance case{'s' if len(failed) > 1 else ''} "
                             f"({', '.join(failed)}): not cut over")

    # -- cut over --------------------------------------------------------------------------------------------
    def cut_over(self, step: Step) -> None:
        """The topology names the new site; every node re-reads it; the old identities are revoked; the new site opens."""
        topology, replaced = self.network.topology.cut_over(self.municipality, self.site)
        self._retired = {n.kind: n for n in replaced}
        self._old_client = self._keep_old_credentials()
        self.network.replace_topology(topology)
        for node in topology.all_nodes + replaced:
            pid = self.network.pid(node.name)
            if pid:
                os.kill(pid, signal.SIGHUP)
        serials = []
        for node in replaced:
            serials += self.network.pki.revoke(node.identity)
        step.figures["revoked_serials"] = len(serials)
        self._wait_refused(self._old_client, "the CS to refuse the old kizon", 15.0)
        for kind in ("kizon", "atena"):
            self._reopen(self.new[kind])
        self.downtime["end"] = _now()
        step.figures["admitted"] = [n.identity for n in self.new.values()]

    def _reopen(self, node, attempts: int = 50) -> None:
        for _ in range(attempts):  # until the node has re-read the topology (it refuses while it thinks it a target)
            try:
                self._stub(node).Reopen(migration_pb2.FreezeRequest(reason="cut over: the new site opens"), timeout=10)
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise StepFailed(f"re-open {node.name}: {exc.code().name}: {exc.details()}") from None
            time.sleep(0.1)
        raise StepFailed(f"{node.name} did not take the new topology (still a target after {attempts / 10:.0f} s)")

    def _keep_old_credentials(self) -> ClientCert:
        """A copy of the old kizon's client certificate and key, to show after decommission that it is refused."""
        scratch = Path(tempfile.mkdtemp(prefix="retired-"))
        cert, key = self.network.pki.node_files(self.old["kizon"].name, "client")
        shutil.copy(cert, scratch / "client.pem")
        shutil.copy(key, scratch / "client.key")
        os.chmod(scratch / "client.key", 0o600)
        return ClientCert(scratch / "client.pem", scratch / "client.key", self.network.pki.trust_bundle)

    def _wait_refused(self, cert: ClientCert, what: str, timeout: float) -> str:
        cs = self.network.topology.find("cs", self.municipality)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with channel(cs, cert) as ch:
                    ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    return f"{exc.code().name}: {exc.details()}"
            if time.monotonic() > deadline:
                raise StepFailed(f"waited {timeout:.0f} s for {what}")
            time.sleep(0.1)

    # -- decommission ----------------------------------------------------------------------------------------
    def decommission(self, step: Step) -> None:
        """Stop the old site, keep its audit trail aside, destroy its data and keys, and show it is gone."""
        archive = self.network.state_dir / "archive"
        destroyed = []
        for node in self._retired.values():
            pid = self.network.pid(node.name)
            if pid:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while self.network.pid(node.name) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.network.pid(node.name):
                    os.kill(pid, signal.SIGKILL)
            self.network.pid_file(node.name).unlink(missing_ok=True)
            keep = archive / node.name
            keep.mkdir(mode=0o700, parents=True, exist_ok=True)
            for evidence in (self.network.audit_file(node.name), self.network.checkpoints_file(node.name)):
                if evidence.exists():
                    shutil.copy2(evidence, keep / evidence.name)  # the audit trail outlives the site
            for folder in (self.network.state_dir / "data" / node.name, self.network.state_dir / "pki" / "nodes" / node.name):
                if folder.exists():
                    shutil.rmtree(folder)
                    destroyed.append(str(folder.relative_to(self.network.state_dir)))
        for folder in (self.export_dir, self.inbox / self.run_id):
            shutil.rmtree(folder, ignore_errors=True)
            destroyed.append(str(folder.relative_to(self.network.state_dir)))
        step.figures["destroyed"] = destroyed
        left = [d for d in destroyed if (self.network.state_dir / d).exists()]
        step.checks.append(("data and keys gone", "failed" if left else "ok", ", ".join(left) or f"{len(destroyed)} folders"))
        revoked = self._on_crl([n.identity for n in self._retired.values()])
        step.checks.append(("old identities on the CRL", "ok" if revoked[0] else "failed", revoked[1]))
        refusal = self._wait_refused(self._old_client, "a refusal of the old identity", 5.0)
        step.checks.append(("a connection with the old identity", "ok", f"refused: {refusal}"))
        shutil.rmtree(self._old_client.cert.parent, ignore_errors=True)
        failed = [c for c in step.checks if c[1] != "ok"]
        if failed:
            raise StepFailed("decommission not verified: " + "; ".join(f"{c[0]}: {c[2]}" for c in failed))

    def _on_crl(self, identities: list[str]) -> tuple[bool, str]:
        entries = [e for e in self.network.pki.index() if e["identity"] in identities]
        missing = []
        for e in entries:
            crl = x509.load_pem_x509_crl(self.network.pki.crl_path(e["domain"]).read_bytes())
            if crl.get_revoked_certificate_by_serial_number(int(e["serial"])) is None:
                missing.append(f"{e['identity']} serial {e['serial']}")
        return not missing, ("not revoked: " + ", ".join(missing)) if missing else f"{len(entries)} certificates revoked"

    # -- rollback --------------------------------------------------------------------------------------------
    def rollback(self, failed: Step) -> None:
        """Undo the run: the target wiped, the old site re-opened, the run's files removed; each part done and
        checked on its own, so that the step says exactly what was restored and what was not."""
        step = Step("rollback", started=_now())
        begun = time.monotonic()
        for what, action in self._rollback_plan(failed):
            try:
                result, detail = action()
            except StepFailed as exc:
                result, detail = "failed", str(exc)
            except grpc.RpcError as exc:
                result, detail = "failed", f"{exc.code().name}: {exc.details()}"
            except OSError as exc:
                result, detail = "failed", str(exc)
            step.checks.append((what, result, detail))
        undone = [c for c in step.checks if c[1] != "ok"]
        reopened = all(c[1] == "ok" for c in step.checks if c[0].startswith("re-open"))
        if reopened:
            self.downtime["end"] = _now()  # the counters are open again; else the downtime has not ended
        step.result = "failed" if undone else "ok"
        if undone:
            step.message = (f"INCOMPLETE: not restored: {'; '.join(f'{c[0]} ({c[1]}: {c[2]})' for c in undone)}"
                            + (f"; restored: {', '.join(c[0] for c in step.checks if c[1] == 'ok')}"
                               if len(undone) < len(step.checks) else "")
                            + ("; the old site is open again" if reopened else
                               "; the old site is NOT open again: restore it by hand before the counters open"))
        else:
            step.message = f"the target wiped, {self.old['kizon'].name} and {self.old['atena'].name} open again"
        step.ended, step.seconds = _now(), round(time.monotonic() - begun, 3)
        self.steps.append(step)

    def _rollback_plan(self, failed: Step) -> list:
        """(what, action) in order: each action returns (result, detail) or raises; the target wiped first, then the
        old site opened (atena before kizon, so that kizon's feed is taken), then the run's files removed."""
        reason = migration_pb2.FreezeRequest(reason=f"rollback: {failed.name} failed")
        try:
            live = self._live_names()
        except Exception as exc:  # noqa: BLE001 (whatever broke it, the parts that need it are then not done)
            why = f"the topology could not be read ({type(exc).__name__}: {exc})"
            return [(f"{verb} {node.name}", lambda: ("not done", why)) for verb, node in
                    [("wipe", self.new["kizon"]), ("wipe", self.new["atena"]), ("re-open", self.old["atena"]),
                     ("re-open", self.old["kizon"])]] + [("remove the run's files", self._remove_files)]
        plan = [(f"wipe {self.new[k].name}", lambda k=k: self._wipe(self.new[k], reason, live)) for k in ("kizon", "atena")]
        plan += [(f"re-open {self.old[k].name}", lambda k=k: self._reopen_old(self.old[k], reason, live))
                 for k in ("atena", "kizon")]
        return plan + [("remove the run's files", self._remove_files)]

    def _live_names(self) -> dict[str, str]:
        """kind → the node the topology on disk now names for the municipality (another cut over may have changed it)."""
        topology = type(self.network).open(self.network.state_dir).topology
        return {kind: topology.find(kind, self.municipality).name for kind in ("kizon", "atena")}

    def _wipe(self, node, reason, live: dict) -> tuple[str, str]:
        """Wipe a target, unless the topology now names it live; checked empty after."""
        if node.name in live.values():  # a target that is the live site now holds the live register
            return "not done", f"the topology names {node.name} as the live site now: wiping it would destroy the register"
        self._stub(node).Wipe(reason, timeout=60)
        records = self._stub(node).GetSiteState(migration_pb2.FreezeRequest(), timeout=10).records
        return ("ok", "0 records") if records == 0 else ("failed", f"{records} records left after the wipe")

    def _reopen_old(self, node, reason, live: dict) -> tuple[str, str]:
        """Re-open a node of the old site, if the topology still names it; checked open after."""
        if node.name not in live.values():
            return "not done", f"the topology no longer names {node.name} (now {live[node.kind]}): it cannot open again"
        self._stub(node).Reopen(reason, timeout=60)
        state = self._stub(node).GetSiteState(migration_pb2.FreezeRequest(), timeout=10)
        return ("failed", f"still frozen ({state.reason})") if state.frozen else ("ok", f"open, {state.records} records")

    def _remove_files(self) -> tuple[str, str]:
        """Remove the export and its copy in the inbox; checked gone after."""
        folders = (self.export_dir, self.inbox / self.run_id)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        left = [str(f) for f in folders if f.exists()]
        return ("failed", "left: " + ", ".join(left)) if left else ("ok", "export and inbox copy removed")

    # -- helpers ---------------------------------------------------------------------------------------------
    def _call(self, method, request, what: str):
        for attempt in range(TRANSPORT_TRIES):
            try:
                return method(request, timeout=CALL_TIMEOUT)
            except grpc.RpcError as exc:
                # A call gRPC could not deliver (no connection, a handshake the node closed) carries no rule: asked
                # again, a few times; a node's refusal names its rule and ends the step at once.
                if exc.code() == grpc.StatusCode.UNAVAILABLE and not rule_of(exc) and attempt + 1 < TRANSPORT_TRIES:
                    # (after a pause: a channel that has just failed to connect fails the next tries at once, in its
                    # reconnect back-off, which starts at a second)
                    time.sleep(TRANSPORT_PAUSE * (attempt + 1))
                    continue
                raise StepFailed(f"{what}: {exc.code().name}: {exc.details()}") from None

    def report(self, seconds: float, failed: Step | None) -> dict:
        """The run as a document: every step, the downtime window, the verdict; rolled_back only when every part of
        the rollback was done and checked (rollback says what was and was not restored)."""
        if self.downtime["start"] and self.downtime["end"]:
            start = dt.datetime.fromisoformat(self.downtime["start"])
            end = dt.datetime.fromisoformat(self.downtime["end"])
            self.downtime["seconds"] = round((end - start).total_seconds(), 3)
        undo = next((s for s in self.steps if s.name == "rollback"), None)
        rollback = None if undo is None else {
            "complete": undo.result == "ok", "restored": [c[0] for c in undo.checks if c[1] == "ok"],
            "not_restored": [f"{c[0]} ({c[1]}: {c[2]})" for c in undo.checks if c[1] != "ok"]}
        return {
            "run": self.run_id, "municipality": self.municipality, "site": self.site, "injected": list(self.inject),
            "result": "failed" if failed else "passed", "failed_step": failed.name if failed else None,
            "failure": failed.message if failed else None,
            "rolled_back": bool(rollback and rollback["complete"]), "rollback": rollback,
            "lock": {"path": str(MigrationLock(self.network.state_dir).path), "took_over": self.took_over},
            "downtime": self.downtime, "seconds": round(seconds, 3),
            "steps": [asdict(s) for s in self.steps],
            "vendor_layout": self.vendor_layout, "characters": self.characters(),
        }


def _code_point(code: str) -> str:
    """A 外字 code as a run names it (U+E000, E000, or the CP932 code F040) as its private-use character."""
    text = code.strip().upper().removeprefix("U+")
    try:
        value = int(text, 16)
    except ValueError:
        raise StepFailed(f"--accept-unmapped {code!r}: give a 外字 code as U+E000 or its CP932 code F040") from None
    if 0xF040 <= value <= 0xF9FC:
        try:
            return bytes.fromhex(text).decode("cp932")
        except (ValueError, UnicodeDecodeError):
            raise StepFailed(f"--accept-unmapped {code!r} is not a CP932 user-defined code") from None
    return chr(value)


def _keys(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def write_json(report: dict, path: Path) -> None:
    """The report as JSON."""
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")

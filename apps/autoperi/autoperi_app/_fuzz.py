"""`autoperi bench fuzz`: mutated CIF files through the reader and the ingest service.

Runs `_fuzz_reader.fuzz_reader` (the reader in worker processes: crashes, hangs, contract
violations) then `_fuzz_ingest.fuzz_ingest` (a real ingest server: statuses, all-or-nothing
commits, request_id retries) from one seed and one seed corpus, and writes fuzz.json and
fuzz.md to the output directory; the inputs of any finding go to `<out>/fuzz_findings/`.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoperi_app._fuzz_ingest import IngestPlan, fuzz_ingest
from autoperi_app._fuzz_inputs import MUTATIONS, FuzzCorpus
from autoperi_app._fuzz_reader import ReaderPlan, fuzz_reader

DEFAULT_CORPUS = (Path("tests/data/bad_inputs"), Path("tests/data/fuzz_seeds"))


@dataclass(frozen=True)
class FuzzPlan:
    """The seed corpus directories and the two runs (reader, then ingest)."""

    reader: ReaderPlan
    ingest: IngestPlan
    corpus: tuple[Path, ...] = field(default=DEFAULT_CORPUS)


def run_fuzz(plan: FuzzPlan, out: Path) -> dict[str, Any]:
    """Run both parts; write out/fuzz.json and out/fuzz.md; return the result (its "passed"
    is False when anything was found: a crash, hang, violation, non-OK status or problem)."""
    dirs = list(plan.corpus)
    corpus = FuzzCorpus.load(dirs)
    findings, load_before, began = out / "fuzz_findings", os.getloadavg()[0], time.perf_counter()
    reader = fuzz_reader(dirs, plan.reader, findings)
    ingest = fuzz_ingest(dirs, plan.ingest, findings)
    result = {
        "benchmark": "fuzz",
        "seed": plan.reader.seed,
        "corpus": {"dirs": [str(d) for d in dirs], "seed_files": len(corpus.seeds)},
        "mutations": [*MUTATIONS, "gzip"],
        "reader": reader,
        "ingest": ingest,
        "passed": _passed(reader, ingest),
        "wall_seconds": round(time.perf_counter() - began, 1),
        "machine": _machine(load_before),
        "plans": {"reader": asdict(plan.reader), "ingest": asdict(plan.ingest)},
    }
    _write(out, result)
    return result


def _passed(reader: dict[str, Any], ingest: dict[str, Any]) -> bool:
    found = reader["crashes"] + reader["hangs"] + reader["contract_violations"]
    return found == 0 and ingest["non_ok_statuses"] == 0 and not ingest["problems"]


def _machine(load_before: float) -> dict[str, Any]:
    """Cores, load and the CPU seconds this process and its children used."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_seconds_driver": round(own.ru_utime + own.ru_stime, 1),
        "cpu_seconds_children": round(children.ru_utime + children.ru_stime, 1),
        "niceness": os.nice(0),
        "platform": platform.platform(),
    }


def _write(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "fuzz.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "fuzz.md").write_text("\n".join(_markdown(result)) + "\n")


def _markdown(result: dict[str, Any]) -> list[str]:
    r, g, m = result["reader"], result["ingest"], result["machine"]
    return [
        "# Fuzzing the CIF reader and the ingest service",
        "",
        f"Seed {result['seed']}; {result['corpus']['seed_files']} seed files from "
        f"{', '.join(result['corpus']['dirs'])}, each input 1-4 mutations of one of them "
        f"({', '.join(result['mutations'])}); an input is rebuilt from (seed, stream, index). "
        f"Verdict: **{'passed' if result['passed'] else 'FAILED'}**.",
        "",
        *_reader_lines(r),
        "",
        *_ingest_lines(g),
        "",
        f"Wall {result['wall_seconds']} s; machine: {m['cpu_count']} CPUs, load (1 min) "
        f"{m['load_average_1m_before_after'][0]} before, {m['load_average_1m_before_after'][1]} "
        f"after, niceness {m['niceness']}; CPU s: driver {m['cpu_seconds_driver']}, children "
        f"{m['cpu_seconds_children']}; {m['platform']}.",
        *_finding_lines([*r["findings"], *g["findings"]]),
    ]


def _reader_lines(r: dict[str, Any]) -> list[str]:
    return [
        "## Reader (`autoperi_data.read_records`, worker processes)",
        "",
        f"| inputs | crashes | hangs (> {r['hang_limit_s']} s) | contract violations | inputs/s "
        "| wall s | mean ms/input | worker restarts |",
        "|---|---|---|---|---|---|---|---|",
        f"| {r['inputs']} | {r['crashes']} | {r['hangs']} | {r['contract_violations']} | "
        f"{r['inputs_per_second']} | {r['wall_seconds']} | {r['mean_ms_per_input']} | "
        f"{r['worker_restarts']} |",
        "",
        f"{r['records']} records: {r['accepted_records']} accepted, rejected by code "
        f"{r['rejected_records']}; whole-file errors (CrystalError) {r['file_errors']}; "
        f"one-record catch-all ('cif_parse: unexpected ...') {r['masked_exceptions'] or 'none'}.",
        f"Slowest inputs: {_slowest(r['slowest_inputs'])}. Workers: {r['workers']}.",
    ]


def _ingest_lines(g: dict[str, Any]) -> list[str]:
    return [
        "## Ingest service (real server, real socket, one Ingest call per "
        f"{g['files_per_call']} files)",
        "",
        "| inputs | calls | non-OK statuses | partial commits | other problems | commits "
        "| retries (same request_id) | inputs/s | call p50 ms | call p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {g['inputs']} | {g['calls']} | {g['non_ok_statuses']} | {g['partial_commits']} | "
        f"{sum(g['problems'].values()) - g['partial_commits']} | {g['commits']} | "
        f"{g['retries_checked']} | {g['inputs_per_second']} | {g['call_p50_ms']} | "
        f"{g['call_p99_ms']} |",
        "",
        f"Statuses {g['statuses']}; records {g['records_received']} received, "
        f"{g['records_accepted']} accepted, {g['records_rejected']} rejected, "
        f"{g['records_duplicate']} duplicates; files the client refused: "
        f"{g['client_refused_files']}; rejection codes {g['rejection_codes']}.",
    ]


def _slowest(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"#{x['index']} {x['seconds']} s ({x['mutations']})" for x in items[:3])


def _finding_lines(findings: list[dict[str, Any]]) -> list[str]:
    if not findings:
        return []
    rows = [f"- {f['kind']}: {f['detail']} (saved: {f['saved']})" for f in findings[:20]]
    return ["", "## Findings", "", *rows]

"""The benchmark's report builder (bench/report.py): overlap and shares from given job records, targets judged,
the generated section spliced into BENCHMARKS.md without touching what was written by hand."""

from __future__ import annotations

import pytest

from bench.report import END, START, drain_overlap, judge, share_of, splice


def test_overlap_is_the_share_of_drain_time_with_two_or_more_drains_running() -> None:
    # Busy from 0 to 10 and 12 to 14 (12 s); two at once from 4 to 6 and 12 to 13, three at once 5 to 6.
    intervals = [(0, 6), (4, 10), (5, 6), (12, 14), (12, 13)]
    assert drain_overlap(intervals) == pytest.approx(3 / 12)


def test_one_drain_after_another_never_overlaps() -> None:
    assert drain_overlap([(0, 1), (1, 2), (3, 4)]) == 0.0
    assert drain_overlap([]) == 0.0


def test_share_counts_the_events_of_the_workers_named_with_the_prefix() -> None:
    drained = {"bench-a-worker-0-1f": 600, "bench-b-worker-0-2e": 300, "bench-b-worker-1-3d": 100}
    assert share_of(drained, "bench-b-") == pytest.approx(0.4)
    assert share_of({}, "bench-b-") == 0.0


def test_targets_are_met_missed_or_not_measured_and_any_loss_fails_the_run() -> None:
    report = {"sending": {"ratio_vs_noop_drain": 16.0, "cpu_ms_per_message": 0.9, "lost": 0, "duplicates": 0},
              "faulty": {"lost": 0, "duplicates": 1}, "receipts": {"lost": 0, "duplicates": 0},
              "scale": {"lost": 0, "duplicates": 0}}
    verdict = judge(report)
    met = {t["key"]: t["met"] for t in verdict["targets"]}
    assert met["sending.ratio_vs_noop_drain"] is True
    assert met["sending.cpu_ms_per_message"] is False
    assert met["ingest.ratio_vs_enqueue_only"] is None
    assert verdict["nothing_lost_or_duplicated"] is False


def test_splicing_replaces_only_the_generated_section() -> None:
    by_hand = "# Benchmarks\n\nIntro.\n\n## Analysis\n\nWritten by hand.\n"
    first = splice(by_hand, f"{START}\nrun 1\n{END}")
    assert first.index("run 1") < first.index("## Analysis") and "Written by hand." in first
    second = splice(first, f"{START}\nrun 2\n{END}")
    assert "run 1" not in second and "run 2" in second and second.count(START) == 1
    assert second.replace("run 2", "run 1") == first

"""Which partition an event joins: the same key always the same one, on every process, and keys spread."""

from __future__ import annotations

import subprocess
import sys

from workers.core.partitions import MAX_PARTITIONS, partition_of


def test_the_same_key_is_the_same_partition_and_keys_spread_over_all_of_them() -> None:
    assert partition_of("order-1", 16) == partition_of("order-1", 16)
    spread = {partition_of(f"evt_{i}", 16) for i in range(500)}
    assert spread == set(range(16))
    assert {partition_of(f"evt_{i}", 1) for i in range(50)} == {0}
    assert max(partition_of(f"k{i}", MAX_PARTITIONS) for i in range(5000)) == MAX_PARTITIONS - 1


def test_every_process_puts_a_key_in_the_same_partition() -> None:
    # Web processes on several machines push, workers elsewhere drain: str hashes are salted per process.
    code = "from workers.core.partitions import partition_of; print([partition_of(f'key-{i}', 16) for i in range(40)])"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(3)}
    assert runs == {f"{[partition_of(f'key-{i}', 16) for i in range(40)]}\n"}

"""Which partition of the pending events an event joins: the same key always the same partition.

Owns the mapping from a partition key to a partition number and the bounds of the partition count; the lists
and leases that a partition number names are `workers.store`'s. Pure: no I/O.
"""

from __future__ import annotations

import zlib

MAX_PARTITIONS = 256
"""The most partitions a deployment may have (HOOKLINE_PARTITIONS). The drain sweep looks at all of them, so
events left in a partition beyond the count in use (after lowering it) are still drained."""


def partition_of(key: str, count: int) -> int:
    """The partition (0 to `count` - 1) of events whose partition key is `key`.

    CRC-32 rather than `hash()`: every process on every machine must agree, and `hash()` of a string is salted
    per process."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % count

"""Bytewax recovery for long-running flows: resume after a crash without loss or double counts.

A flow run with a recovery directory snapshots, at the end of every epoch, each source
partition's next offset and each stateful step's state (for the candle flow: every open
window and the revision history). The sinks flush in the same snapshot, so an epoch is
committed only once its output is written. After a crash the flow resumes from the last
committed epoch: records after it are read again and their candles rewritten with the
same versions (ReplacingMergeTree keeps one row), so nothing is lost or counted twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir

# run_main executes a dataflow on one worker in this process.
from bytewax.testing import run_main

logger = logging.getLogger(__name__)

EPOCH = timedelta(seconds=10)
"""How often state is snapshotted (and sinks flushed) when recovery is on."""


def recovery_config(db_dir: Path, partitions: int = 1) -> RecoveryConfig:
    """Recovery in `db_dir`, creating its partition databases on first use.

    Args:
        db_dir: Directory holding Bytewax's recovery databases (keep it on a volume).
        partitions: Recovery partitions to create the first time; later runs keep what
            the directory has.

    Returns:
        The configuration to run a flow with.
    """
    db_dir.mkdir(parents=True, exist_ok=True)
    if not any(db_dir.glob("part-*.sqlite3")):
        logger.info("creating %d recovery partition(s) in %s", partitions, db_dir)
        init_db_dir(db_dir, partitions)
    return RecoveryConfig(db_dir)


def run_flow(flow: Dataflow, recovery_dir: Path | None = None) -> None:
    """Run a dataflow on one worker of this process, recoverable when a directory is given."""
    if recovery_dir is None:
        run_main(flow)
    else:
        run_main(flow, epoch_interval=EPOCH, recovery_config=recovery_config(recovery_dir))

"""The run directory (the only code that opens run files), weights, checkpoints and typed results."""

from committee.store.records import CommitteeResult, MemberResult, RunResult
from committee.store.run_dir import RunDir

__all__ = ["CommitteeResult", "MemberResult", "RunDir", "RunResult"]

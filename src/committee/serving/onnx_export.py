"""Export a whole committee (members and its rule) as one ONNX graph.

Input ``images``: ``(N, C, S, S)`` (Fashion-MNIST: ``(N, 1, 28, 28)``), uint8 in [0, 255] or float in [0, 1] (one graph
per dtype; choose with ``--input-dtype``). Output ``probabilities``: ``(N, K)``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from committee.base.errors import CommitteeError, UsageError
from committee.base.fileio import atomic_path, remove_stale_temps
from committee.rules.committee_rules import EXPORTABLE_RULES


class Committee(Protocol):
    """What export reads of a trained committee (:class:`committee.serving.trained.Committee`)."""

    rule: str
    rule_params_: dict
    members_: dict[str, nn.Module]
    input_shape: tuple[int, int, int]


class CommitteeModule(nn.Module):
    """Members + a fitted rule as one module: images ``(N, C, S, S)`` -> probabilities ``(N, K)``."""

    def __init__(
        self,
        members: list[nn.Module],
        weights: list[float] | None,
        vote: bool = False,
        uint8_input: bool = False,
        temperature: float | None = None,
    ):
        super().__init__()
        self.members = nn.ModuleList(members)
        w = torch.tensor(weights if weights is not None else [1.0] * len(members), dtype=torch.float32)
        self.register_buffer("weights", w / w.sum())
        self.vote, self.uint8_input, self.temperature = vote, uint8_input, temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if self.uint8_input else images
        if self.vote:
            # Hard vote: the share of members whose top class is c (ties resolved by argmax: lowest index).
            logits = [m(x) for m in self.members]
            outs = [F.one_hot(z.argmax(dim=1), z.shape[1]).float() for z in logits]
            return torch.stack(outs).mean(dim=0)
        probs = torch.stack([F.softmax(m(x), dim=1) for m in self.members])  # (M, N, K)
        mean = (probs * self.weights[:, None, None]).sum(dim=0)
        if self.temperature is None:
            return mean
        # ensemble.temperature_scale: softmax(log p / T)
        return F.softmax(torch.log(mean.clamp_min(1e-15)) / self.temperature, dim=1)


def build_committee_module(committee: Committee, uint8_input: bool) -> CommitteeModule:
    """A trained committee's members and fitted rule as one module."""
    if committee.rule == "cascade":
        # One graph would run every member on every image (ONNX's If branches on a whole tensor, not per
        # image), which is the calibrated committee without the savings; per-stage graphs would need a
        # driver in the user's runtime. So: refuse, and name what does the job.
        raise UsageError(
            "the cascade cannot be one ONNX graph (its stages run on a shrinking subset of the images); "
            "export --rule calibrated (the same committee, every member on every image) or serve the cascade "
            "with `committee serve --rule cascade`"
        )
    if committee.rule not in EXPORTABLE_RULES:
        raise UsageError(f"rule {committee.rule!r} cannot be exported; choose from {', '.join(EXPORTABLE_RULES)}")
    params = committee.rule_params_
    return CommitteeModule(
        list(committee.members_.values()),
        params.get("weights"),
        vote=committee.rule == "vote",
        uint8_input=uint8_input,
        temperature=params.get("temperature"),
    ).eval()


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Silence what torch.export prints (graphs, warnings): its loggers, Python's streams and the file
    descriptors (C++ code writes to those)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryFile() as sink, io.StringIO() as text:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            logging.disable(logging.NOTSET)


def trace_failure(exc: BaseException) -> str:
    """Why torch.export failed, in one line: the root error and the user's line that raised it."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = str(exc) + "\n" + str(root)
    lines = [line.strip() for line in str(root).strip().splitlines() if line.strip()]
    where = re.search(r'The following call raised this error:\s+File "([^"]+)", line (\d+)[^\n]*\n\s*(.+)', text)
    at = f" at {where.group(1)}:{where.group(2)} `{where.group(3).strip()}`" if where else ""
    return f"{type(root).__name__}: {lines[0][:160] if lines else ''}{at}"


def untraceable_member(committee: Committee) -> tuple[str, str] | None:
    """(member, why) of the first member torch.export cannot trace on its own, or None."""
    x = torch.rand(2, *committee.input_shape)
    for name, member in committee.members_.items():
        try:
            with quiet_output():
                torch.export.export(member, (x,), strict=False)
        except Exception as exc:  # any tracing failure of the user's code: told in one line
            return name, trace_failure(exc)
    return None


def export_onnx(committee: Committee, out: Path, input_dtype: str = "uint8") -> Path:
    """Write the committee as ONNX (atomically) and return its path."""
    try:
        import onnx  # noqa: F401  (optional: pip install 'committee[export]')
    except ImportError:
        raise CommitteeError(
            "ONNX export needs the onnx and onnxscript packages: pip install 'committee[export]'"
        ) from None
    module = build_committee_module(committee, input_dtype == "uint8")
    shape = (2, *committee.input_shape)
    example = torch.randint(0, 256, shape, dtype=torch.uint8) if input_dtype == "uint8" else torch.rand(shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    remove_stale_temps(out)  # left by an export that was killed
    try:
        with atomic_path(out) as tmp:
            with quiet_output():
                program = torch.onnx.export(
                    module,
                    (example,),
                    dynamo=True,
                    input_names=["images"],
                    output_names=["probabilities"],
                    dynamic_shapes=({0: batch},),
                    verbose=False,
                )
                program.save(str(tmp))
    except CommitteeError:
        raise
    except Exception as exc:  # torch.export's own errors are pages long: one line, naming the member
        culprit = untraceable_member(committee)
        if culprit is not None:
            raise CommitteeError(
                f"member {culprit[0]} cannot be exported to ONNX: torch.export cannot trace it ({culprit[1]}); "
                "nothing was written"
            ) from None
        raise CommitteeError(f"ONNX export failed ({trace_failure(exc)}); nothing was written") from None
    return out

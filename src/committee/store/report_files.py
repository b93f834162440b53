"""The report's files of a run directory: figures, report.html and .md, MODEL_CARD.md, seeds.json and .md.

A half of :class:`committee.store.run_dir.RunDir` (its base class), kept apart so each module stays small.
"""

from __future__ import annotations

from pathlib import Path

from committee.base.errors import CommitteeError
from committee.base.fileio import atomic_path, os_error, run_file, write_bytes, write_json, write_text

# The most of MODEL_CARD.md we read (ours are a few kB): a huge or endless one is refused, never loaded.
MAX_CARD_BYTES = 1 << 20


class ReportFiles:
    """Mixed into RunDir, which sets ``path``."""

    path: Path

    def _report_file(self, name: str) -> Path:
        return self.path / name

    def write_seeds(self, summary: dict, markdown: str) -> Path:
        write_json(self._report_file("seeds.json"), summary)
        write_text(self._report_file("seeds.md"), markdown)
        return self._report_file("seeds.json")

    def save_figure(self, fig, name: str) -> None:
        """A matplotlib figure as figures/<name> (PNG), written atomically; the figure is closed."""
        import matplotlib.pyplot as plt

        run_file(self.path / "figures", self.path, folder=True)  # never write through a linked figures/
        with atomic_path(self.path / "figures" / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)

    def figure_paths(self) -> list[Path]:
        """The report's figures (PNG), to hand to an experiment tracker."""
        folder = run_file(self.path / "figures", self.path, folder=True)
        return sorted(run_file(p, self.path) for p in folder.glob("*.png"))

    def figure_bytes(self, name: str) -> bytes:
        path = run_file(self.path / "figures" / name, self.path)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise os_error(path, exc, "cannot read") from None

    def write_report(self, markdown: str, html: str, card: str) -> tuple[Path, Path]:
        """report.md, report.html and MODEL_CARD.md; returns the report's paths (html first)."""
        write_text(self._report_file("MODEL_CARD.md"), card)
        write_text(self._report_file("report.md"), markdown)
        write_bytes(self._report_file("report.html"), html.encode("utf-8"))
        return self._report_file("report.html"), self._report_file("report.md")

    def model_card(self) -> str | None:
        """MODEL_CARD.md as written with the report, or None before the first report; one that is not the
        run's own regular file, over 1 MiB or not UTF-8 text is one line."""
        path = run_file(self._report_file("MODEL_CARD.md"), self.path)
        if not path.exists():
            return None
        try:
            if path.stat().st_size > MAX_CARD_BYTES:
                raise CommitteeError(
                    f"{path}: {path.stat().st_size:,} bytes, over the {MAX_CARD_BYTES:,} a model card may have"
                )
            return path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise CommitteeError(
                f"{path}: not UTF-8 text; re-make it with `committee report --run-dir {self.path}`"
            ) from None
        except OSError as exc:
            raise os_error(path, exc, "cannot read") from None

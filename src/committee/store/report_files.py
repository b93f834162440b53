"""The report's files of a run directory: figures, report.html and .md, MODEL_CARD.md, seeds.json and .md.

A half of :class:`committee.store.run_dir.RunDir` (its base class), kept apart so each module stays small.
"""

from __future__ import annotations

from pathlib import Path

from committee.base.fileio import atomic_path, os_error, write_bytes, write_json, write_text


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

        with atomic_path(self.path / "figures" / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)

    def figure_paths(self) -> list[Path]:
        """The report's figures (PNG), to hand to an experiment tracker."""
        return sorted((self.path / "figures").glob("*.png"))

    def figure_bytes(self, name: str) -> bytes:
        path = self.path / "figures" / name
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
        """MODEL_CARD.md as written with the report, or None before the first report."""
        path = self._report_file("MODEL_CARD.md")
        return path.read_text(encoding="utf-8") if path.exists() else None

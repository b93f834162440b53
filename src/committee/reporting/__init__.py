"""The report: context, sections, plots from computed arrays, HTML and Markdown rendering."""

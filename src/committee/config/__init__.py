"""The run's configuration: :class:`RunConfig`, each member's :class:`MemberOptions`, the presets."""

from committee.config.presets import PRESETS, preset
from committee.config.run_config import FORMAT_VERSION, MEMBER_OPTIONS, MemberOptions, RunConfig

__all__ = ["FORMAT_VERSION", "MEMBER_OPTIONS", "PRESETS", "MemberOptions", "RunConfig", "preset"]

"""Sense checks of the JSON files every reader trusts: pure functions, one line saying what is wrong."""

from __future__ import annotations

from committee.base.limits import current_limits

PRECISIONS_RECORDED = ("fp32", "bf16")


def data_info_problem(info: object) -> str | None:
    """What is wrong with a data.json (None: nothing): the class names and input shape every reader trusts."""
    if not isinstance(info, dict):
        return "not a data description (expected a JSON object)"
    classes = info.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            return "'classes' must be a list of strings"
        if not 2 <= len(classes) <= current_limits().max_classes:
            return f"'classes' must hold 2 to {current_limits().max_classes} names, has {len(classes)}"
        if len(set(classes)) != len(classes):
            return "'classes' names a class twice"
        if any(not c.strip() for c in classes):
            return "'classes' holds an empty name"
    shape = info.get("input_shape")
    if shape is not None and not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(type(v) is int for v in shape)
        and shape[0] in (1, 3)
        and 4 <= shape[1] == shape[2] <= 512
    ):
        return f"'input_shape' must be [C, S, S] with C 1 or 3 and S 4-512, got {shape!r}"
    return None


def metrics_problem(doc: object) -> str | None:
    """What is wrong with a metrics.json's outline (None: nothing), before any field is read."""
    if not isinstance(doc, dict):
        return "not a metrics file (expected a JSON object)"
    for key in ("members", "committees"):
        if not isinstance(doc.get(key, {}), dict):
            return f"'{key}' must be an object of name -> scores, got {type(doc[key]).__name__}"
    return None


def member_info_problem(info: object, name: str) -> str | None:
    """What is wrong with a member.json (None: nothing): the fields that rebuild and describe the model."""
    if not isinstance(info, dict):
        return "not a member description (expected a JSON object)"
    checks = (
        (info.get("name", name) == name, f"'name' is {info.get('name')!r}, not the folder's {name!r}"),
        (isinstance(info.get("arch", name), str), "'arch' must be a string"),
        (isinstance(info.get("model_kwargs") or {}, dict), "'model_kwargs' must be an object"),
        (
            info.get("precision", "fp32") in PRECISIONS_RECORDED,
            f"'precision' must be one of {', '.join(PRECISIONS_RECORDED)}, got {info.get('precision')!r}",
        ),
        (
            type(info.get("params", 0)) is int and info.get("params", 0) >= 0,
            f"'params' must be a count, got {info.get('params')!r}",
        ),
    )
    return next((why for ok, why in checks if not ok), None)

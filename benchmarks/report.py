"""Every figure of the latest results as one Markdown table (for docs/performance.md).

uv run python -m benchmarks.report
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ._common import RESULTS_DIR

ORDER = (
    "connections",
    "reconnect_storm",
    "fanout",
    "cross_instance",
    "wire_bytes",
    "desktop_start",
    "popup_1000",
    "desktop_idle",
)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def row(bench: str, figure: dict[str, Any]) -> str:
    target = figure["target"]
    if target is None:
        goal, verdict = "", "(info)"
    else:
        cmp = "≤" if figure["lower_is_better"] else "≥"
        on = "ratio " if figure["target_on"] == "ratio" else ""
        goal = f"{on}{cmp} {_num(target)}"
        verdict = "met" if figure["met"] else "**not met**"
    baseline = (
        f"{_num(figure['baseline'])} ({figure['baseline_name']})"
        if figure["baseline"] is not None
        else ""
    )
    ratio = _num(figure["ratio"]) if figure["ratio"] is not None else ""
    value = f"{_num(figure['value'])} {figure['unit']}"
    return f"| {bench} | {figure['name']} | {value} | {baseline} | {ratio} | {goal} | {verdict} |"


def main() -> int:
    print("| benchmark | figure | value | same-run baseline | ratio | target | verdict |")
    print("|---|---|---|---|---|---|---|")
    for bench in ORDER:
        path = RESULTS_DIR / f"{bench}.json"
        if not path.exists():
            print(f"| {bench} | (not run) | | | | | |")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for figure in data["figures"]:
            print(row(bench, figure))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Statistics for each task (binary, multiclass, regression), looked up in one table.

`TASKS[task]` (in `table.py`) holds everything that differs by task: metrics and their
intervals, baselines, the paired test's per-row loss, the shadow's disagreement, group
disparity and the answer shape. The other modules hold the task-specific statistics it uses.
"""

from .stage_reports import baseline_report, realised_performance, slice_report
from .table import TASKS, ShadowRule, Task, TaskStats

__all__ = [
    "TASKS",
    "ShadowRule",
    "Task",
    "TaskStats",
    "baseline_report",
    "realised_performance",
    "slice_report",
]

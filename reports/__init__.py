"""The sensitivity report: numbers in :mod:`reports.analysis`, drawing in :mod:`reports.render`.

Typical use::

    from reports import write_report
    html = write_report("runs/demo", None, "quick")        # -> runs/demo/report/quick/report.html

or step by step::

    from reports import analyze, load_inputs, render_report
    report = analyze(load_inputs("runs/demo", None, "quick"))
    report.paired.overall.mean        # Interval(estimate, low, high), a fraction
"""

from reports.analysis import (
    Cost,
    ExpectedMax,
    Header,
    PairedComparison,
    Report,
    Sensitivity,
    Summary,
    TeacherSection,
    TestCheck,
    analysis_study,
    analyze,
    arm_dev_acc,
    arm_frame,
    cost,
    expected_max,
    header,
    paired_comparison,
    sensitivity,
    summary,
    teacher_section,
    test_check,
    trial_frame,
    trial_gap,
)
from reports.inputs import (
    ReportInputs,
    default_storage_url,
    inputs_from_study,
    load_inputs,
    load_study,
)
from reports.render import (
    SECTIONS,
    figures,
    render_html,
    render_markdown,
    render_report,
    write_csvs,
    write_report,
)

__all__ = [
    "Cost",
    "ExpectedMax",
    "Header",
    "PairedComparison",
    "Report",
    "ReportInputs",
    "SECTIONS",
    "Sensitivity",
    "Summary",
    "TeacherSection",
    "TestCheck",
    "analysis_study",
    "analyze",
    "arm_dev_acc",
    "arm_frame",
    "cost",
    "default_storage_url",
    "expected_max",
    "figures",
    "header",
    "inputs_from_study",
    "load_inputs",
    "load_study",
    "paired_comparison",
    "render_html",
    "render_markdown",
    "render_report",
    "sensitivity",
    "summary",
    "teacher_section",
    "test_check",
    "trial_frame",
    "trial_gap",
    "write_csvs",
    "write_report",
]

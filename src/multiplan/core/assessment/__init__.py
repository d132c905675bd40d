"""双评价: resource-environment carrying capacity and development suitability assessment.

Public API::

    run_assessment(project, task=None) -> AssessmentRun     # the whole pipeline, recorded
    assessment_is_current(project) -> bool                  # the assessment gate
    assessment_gate(project) -> GateResult                  # … with the reason (zh / en)
    project_parameters(project) / set_project_overrides(project, overrides)
    default_parameters() / rule_file_info()
    list_runs(project) / latest_run(project) / list_findings(project) / read_findings(project)

Modules: ``params`` (parameter file), ``grading`` / ``factors`` / ``combine`` (pure array
rules), ``grid`` (alignment and rasterisation), ``engine`` (windowed block runner),
``patches`` (connected components across blocks), ``capacity`` (承载规模), ``plancheck``
(plan-vs-assessment findings), ``records`` (run record and gate), ``run`` (the pipeline),
``report`` (tables and charts for the CLI).
"""

from .params import (
    default_parameters,
    project_parameters,
    rule_file_info,
    set_project_overrides,
)
from .plancheck import list_findings, read_findings
from .records import GateResult, assessment_gate, assessment_is_current, latest_run, list_runs
from .run import OUTPUT_SPECS, AssessmentRun, run_assessment

__all__ = [
    "OUTPUT_SPECS",
    "AssessmentRun",
    "GateResult",
    "assessment_gate",
    "assessment_is_current",
    "default_parameters",
    "latest_run",
    "list_findings",
    "list_runs",
    "project_parameters",
    "read_findings",
    "rule_file_info",
    "run_assessment",
    "set_project_overrides",
]

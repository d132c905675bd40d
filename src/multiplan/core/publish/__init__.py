"""Public-disclosure export: gates, statistics tables, the styled data package, the
manifest and its verification (issue 9 parts 4–7). The map sheets themselves come from
:mod:`multiplan.core.sheets`."""

from .export import ExportResult, available_sheet_keys, export_job, export_package
from .gating import ExportPlan, ExportRefused, GateCheck, plan_export
from .manifest import VerifyReport, verify_export

__all__ = ["ExportPlan", "ExportRefused", "ExportResult", "GateCheck", "VerifyReport",
           "available_sheet_keys", "export_job", "export_package", "plan_export",
           "verify_export"]

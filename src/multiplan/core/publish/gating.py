"""Public vs internal export: the gates an export must pass before anything is written
(issue 9 part 4).

* The plan state comes from the workflow (:func:`multiplan.core.workflow.export_gate`): a
  public export needs 已公布, or 公示中, which gives a draft with the watermark 征求意见稿 on
  every sheet. Until the workflow offers ``export_gate`` the same rule is applied here to
  :func:`~multiplan.core.workflow.current_state`.
* A public sheet that shows administrative boundaries needs a 审图号 (《地图管理条例》2015,
  domain.md §7.2): given for this export, or the project setting ``export_review_no``.
* The public version generalises geometry. The tolerance is the argument, else the project
  setting ``export_generalise_m``, else 50 m — the older (2010) 公开地图内容表示 rule "位置精度
  不低于 50 m" (domain.md §7.2, confidence [L]: from memory; the 2023 规范's limits were not
  verified). The manifest states the value and where it came from.
* An internal export is always allowed; it is marked 内部 (no watermark) in the manifest and
  in the folder name the caller picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import workflow
from ..errors import MultiplanError
from ..project import Project
from ..workflow import Gate

__all__ = ["DEFAULT_GENERALISE_M", "ExportPlan", "ExportRefused", "GateCheck", "plan_export"]

DEFAULT_GENERALISE_M = 50.0
GENERALISE_SOURCE = ("domain.md §7.2：2010 年公开地图内容表示规定“位置精度不低于 50 米”（[L] 凭记忆，"
                     "2023 年《公开地图内容表示规范》的限值未核实） / the 2010 public-map rule "
                     "'positional accuracy no finer than 50 m' (confidence [L], from memory; the "
                     "2023 limits were not verified)")
REVIEW_SETTING = "export_review_no"
GENERALISE_SETTING = "export_generalise_m"


class ExportRefused(MultiplanError):
    """An export gate failed; nothing was written."""

    exit_code = 6


#: an export condition: the workflow's Gate (key, holds, zh, en, detail)
GateCheck = Gate


@dataclass
class ExportPlan:
    """What an export will be, decided before it starts."""

    public: bool
    state: str
    plan_version: Any
    watermark: str | None
    review_no: str | None
    generalise_m: float | None
    generalise_source: str | None
    gates: list[GateCheck]

    @property
    def failures(self) -> list[GateCheck]:
        return [g for g in self.gates if not g.holds]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def edition_zh(self) -> str:
        if not self.public:
            return "内部版（内部资料，不得公开）"
        return "公开版（征求意见稿）" if self.watermark else "公开版"

    @property
    def edition_en(self) -> str:
        if not self.public:
            return "internal edition (not for publication)"
        return "public edition (draft for comment)" if self.watermark else "public edition"

    def refusal(self) -> ExportRefused:
        fails = self.failures
        zh = "；".join(g.zh for g in fails)
        en = "; ".join(g.en for g in fails)
        return ExportRefused("export.gate_failed", f"导出被拒绝，未写出任何文件：{zh}",
                             f"export refused, nothing was written: {en}",
                             gates=[g.to_dict() for g in fails])

    def to_dict(self) -> dict[str, Any]:
        return {"public": self.public, "edition_zh": self.edition_zh,
                "edition_en": self.edition_en, "state": self.state,
                "plan_version": self.plan_version, "watermark": self.watermark,
                "review_no": self.review_no,
                "generalisation": ({"tolerance_m": self.generalise_m,
                                    "method": "shapely.simplify(preserve_topology=True)",
                                    "source": self.generalise_source}
                                   if self.generalise_m else None),
                "gates": [g.to_dict() for g in self.gates]}


def _workflow_gates(project: Project, public: bool, now: Any) -> tuple[str, int,
                                                                      list[GateCheck]]:
    """The plan's state and version, and the workflow's rule for this edition
    (:func:`multiplan.core.workflow.export_gate`)."""
    return (workflow.current_state(project), workflow.plan_version(project),
            list(workflow.export_gate(project, public=public, now=now)))


def _shows_boundaries(project: Project, sheets: list[str]) -> bool:
    """Whether any of ``sheets`` shows administrative boundaries: the sheet's own flag
    (:class:`multiplan.core.sheets.SheetSpec`), else whenever the project has a 行政区 or
    乡镇界 layer."""
    roles = {r.role for r in project.layers()}
    has = bool(roles & {"admin_boundary", "township"})
    from ..sheets import SHEETS

    for key in sheets:
        flag = getattr(SHEETS.get(key), "admin_boundaries", None)
        if (has if flag is None else bool(flag)):
            return True
    return False


def plan_export(project: Project, *, public: bool, sheets: list[str] | None = None,
                review_no: str | None = None, generalise_m: float | None = None,
                now: Any = None) -> ExportPlan:
    """Decide the edition and check every gate (nothing is written)."""
    state, version, gates = _workflow_gates(project, public, now)
    watermark = None
    for g in gates:
        if g.holds and g.detail.get("watermark"):
            watermark = str(g.detail["watermark"])
    if not public:
        watermark = None
    review = (review_no or "").strip() or str(project.setting(REVIEW_SETTING) or "").strip() \
        or None
    gen: float | None = None
    source = None
    if public:
        if sheets and _shows_boundaries(project, sheets):
            if review:
                gates.append(GateCheck("review_no", True, f"审图号：{review}",
                                       f"map review number: {review}"))
            else:
                gates.append(GateCheck(
                    "review_no", False,
                    "公开版地图显示行政区界线，须填写审图号（本次导出的 --review-no 或项目设置 "
                    f"{REVIEW_SETTING}）",
                    "a public map showing administrative boundaries needs a map review number "
                    f"(审图号): give --review-no or set the project setting {REVIEW_SETTING}"))
        if generalise_m is not None:
            gen, source = float(generalise_m), "本次导出指定 / given for this export"
        elif project.setting(GENERALISE_SETTING) is not None:
            gen = float(project.setting(GENERALISE_SETTING))
            source = f"项目设置 {GENERALISE_SETTING} / project setting"
        else:
            gen, source = DEFAULT_GENERALISE_M, GENERALISE_SOURCE
        if gen is not None and gen < 0:
            gates.append(GateCheck("generalise", False, f"概化容差不能为负：{gen}",
                                   f"the generalisation tolerance cannot be negative: {gen}"))
        if not gen:
            gen, source = None, None
    return ExportPlan(public, state, version, watermark, review,
                      gen, source, gates)

"""Phase 1's four-step workflow, kept in session data under `workflow`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from statebridge.api.stateful.texts import WORKFLOW_STEPS
from statebridge.timeutil import js_iso


@dataclass
class Step:
    workflow: dict[str, Any]
    data: dict[str, Any]
    message: str


def start(now: datetime) -> dict[str, Any]:
    epoch_ms = int((now - datetime(1970, 1, 1)).total_seconds() * 1000)
    return {
        "id": f"workflow_{epoch_ms}",
        "currentStep": WORKFLOW_STEPS[0],
        "steps": list(WORKFLOW_STEPS),
        "startedAt": js_iso(now),
        "data": {},
    }


def valid(workflow: Any) -> bool:
    return (
        isinstance(workflow, dict)
        and isinstance(workflow.get("steps"), list)
        and len(workflow["steps"]) > 0
        and all(isinstance(step, str) for step in workflow["steps"])
    )


def advance(workflow: Any, now: datetime) -> Step | None:
    """The next step, or the completion; None when no (usable) workflow was started."""
    if not valid(workflow):
        return None
    steps: list[str] = workflow["steps"]
    current = workflow.get("currentStep")
    index = steps.index(current) if current in steps else -1
    if index == -1 or index >= len(steps) - 1:
        done = {**workflow, "currentStep": "completed", "completedAt": js_iso(now)}
        data = {
            "workflowId": workflow.get("id"),
            "currentStep": "completed",
            "message": "Workflow completed!",
            "steps": steps,
            "startedAt": workflow.get("startedAt"),
            "completedAt": js_iso(now),
            "note": "Workflow state maintained across multiple requests.",
        }
        return Step(done, data, "Workflow completed")
    following = steps[index + 1]
    data = {
        "workflowId": workflow.get("id"),
        "currentStep": following,
        "nextStep": steps[index + 2] if index + 2 < len(steps) else "completed",
        "progress": f"{index + 2}/{len(steps)}",
        "message": f"Proceeded to step: {following}",
        "note": "Each request advances the workflow, with state maintained by the server.",
    }
    return Step({**workflow, "currentStep": following}, data, "Workflow advanced")

// Moving a lead, one way for the board's drag and drop and the lead card's stage menu:
// a lead still in Unsorted is accepted through its Unsorted entry, any other lead is
// moved with PATCH. Declining closes an Unsorted entry (its lead goes to Lost).

import { post, patch } from "./api.js";
import { catalog, STATUS_UNSORTED } from "./catalog.js";
import { toast, reportError } from "./ui.js";

/**
 * Moves `lead` to `statusId` of its pipeline. `entry` is its Unsorted entry, if any.
 * Tells the user how it went; resolves true when the move was made.
 */
export async function moveLead(lead, statusId, entry) {
  const pipelineId = lead.pipeline_id;
  const from = catalog.status(pipelineId, lead.status_id);
  const to = catalog.statusName(pipelineId, statusId);
  try {
    if (from && from.type === STATUS_UNSORTED && entry) {
      await post(`/api/v4/leads/unsorted/${encodeURIComponent(entry.uid)}/accept`, { status_id: statusId });
    } else {
      await patch(`/api/v4/leads/${lead.id}`, { status_id: statusId, pipeline_id: pipelineId });
    }
    toast(`“${lead.name}” moved to ${to}`, { kind: "ok" });
    return true;
  } catch (e) {
    reportError(`Could not move “${lead.name}” to ${to}`, e);
    return false;
  }
}

export async function declineEntry(lead, entry) {
  try {
    await post(`/api/v4/leads/unsorted/${encodeURIComponent(entry.uid)}/decline`);
    toast(`“${lead.name}” declined`, { kind: "ok" });
    return true;
  } catch (e) {
    reportError(`Could not decline “${lead.name}”`, e);
    return false;
  }
}

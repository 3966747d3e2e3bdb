//! Pipelines: ordered stages, Unsorted first, the closing stages 142 (won) and 143 (lost)
//! last — the same shape as amoCRM's, including the shared ids of the closing stages.

use serde::{Deserialize, Serialize};

use super::ids::{AccountId, PipelineId, StatusId};

/// The stage every pipeline closes with on success; the same id in every pipeline.
pub const WON: StatusId = StatusId(142);
/// The stage every pipeline closes with on failure; the same id in every pipeline.
pub const LOST: StatusId = StatusId(143);

/// amoCRM's `type` of a status: 1 marks Unsorted, 0 every other stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusType {
    Normal,
    Unsorted,
}

impl StatusType {
    pub fn code(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Unsorted => 1,
        }
    }
}

impl Serialize for StatusType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for StatusType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(Self::Normal),
            1 => Ok(Self::Unsorted),
            n => Err(serde::de::Error::custom(format!("unknown status type {n}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub id: StatusId,
    pub name: String,
    pub sort: u32,
    #[serde(rename = "type")]
    pub status_type: StatusType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: PipelineId,
    pub account_id: AccountId,
    pub name: String,
    pub is_main: bool,
    pub statuses: Vec<Status>,
}

impl Pipeline {
    /// The pipeline each account starts with: Unsorted, two working stages, won, lost.
    /// `ids` are freshly allocated ids for the three stages of its own.
    pub fn default_for(account_id: AccountId, id: PipelineId, ids: [StatusId; 3]) -> Self {
        let stage = |id, name: &str, sort, status_type| Status {
            id,
            name: name.to_owned(),
            sort,
            status_type,
        };
        Self {
            id,
            account_id,
            name: "Sales".to_owned(),
            is_main: true,
            statuses: vec![
                stage(ids[0], "Unsorted", 10, StatusType::Unsorted),
                stage(ids[1], "First contact", 20, StatusType::Normal),
                stage(ids[2], "Negotiation", 30, StatusType::Normal),
                stage(WON, "Won", 10000, StatusType::Normal),
                stage(LOST, "Lost", 11000, StatusType::Normal),
            ],
        }
    }

    pub fn unsorted(&self) -> Option<&Status> {
        self.statuses
            .iter()
            .find(|s| s.status_type == StatusType::Unsorted)
    }

    /// The first stage a lead can be accepted into: the first one after Unsorted.
    pub fn first_working_stage(&self) -> Option<StatusId> {
        self.statuses
            .iter()
            .find(|s| s.status_type != StatusType::Unsorted)
            .map(|s| s.id)
    }

    pub fn status(&self, id: StatusId) -> Option<&Status> {
        self.statuses.iter().find(|s| s.id == id)
    }

    /// Index of a stage in the pipeline's order.
    pub fn position(&self, id: StatusId) -> Option<usize> {
        self.statuses.iter().position(|s| s.id == id)
    }

    /// True when `ids` name existing stages that stand next to each other (in any order
    /// given), as a stretched action must.
    pub fn is_contiguous(&self, ids: &[StatusId]) -> bool {
        let mut positions: Vec<usize> = match ids.iter().map(|id| self.position(*id)).collect() {
            Some(p) => p,
            None => return false,
        };
        positions.sort_unstable();
        positions.dedup();
        positions.len() == ids.len() && positions.windows(2).all(|w| w[1] == w[0] + 1)
    }
}

/// Where a lead stands: a stage of a pipeline (a status id alone is ambiguous for 142/143).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stage {
    pub pipeline_id: PipelineId,
    pub status_id: StatusId,
}

impl Stage {
    /// A lead here is still open (a known contact's new submission joins it): not won or
    /// lost.
    pub fn is_open(self) -> bool {
        self.status_id != WON && self.status_id != LOST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> Pipeline {
        Pipeline::default_for(
            AccountId(1),
            PipelineId(7),
            [StatusId(1001), StatusId(1002), StatusId(1003)],
        )
    }

    #[test]
    fn default_pipeline_opens_with_unsorted_and_closes_with_won_and_lost() {
        let p = pipeline();
        let ids: Vec<u64> = p.statuses.iter().map(|s| s.id.0).collect();
        assert_eq!(ids, [1001, 1002, 1003, 142, 143]);
        assert_eq!(p.unsorted().map(|s| s.id), Some(StatusId(1001)));
    }

    #[test]
    fn contiguity_of_stage_ranges() {
        let p = pipeline();
        assert!(p.is_contiguous(&[StatusId(1002)]));
        assert!(p.is_contiguous(&[StatusId(1003), StatusId(1002)]));
        assert!(!p.is_contiguous(&[StatusId(1002), StatusId(142)]));
        assert!(!p.is_contiguous(&[StatusId(1002), StatusId(1002)]));
        assert!(!p.is_contiguous(&[StatusId(9)]));
    }
}

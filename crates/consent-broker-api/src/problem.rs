//! RFC 9457 problem details, as every `/v1` error is answered.

use serde::{Deserialize, Serialize};

use crate::ElicitationView;

/// Prefix of every problem `type`; the suffix is the stable `code`.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:consent-broker:problem:";

/// RFC 9457 problem details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:consent-broker:problem:<code>`
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable suffix of `type`, for easy matching.
    pub code: String,
    /// With `reauthorization_required`: a new pending elicitation for the same user,
    /// provider and scopes (same shape as `GET /v1/elicitations/{id}`), ready to pass on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation: Option<Box<ElicitationView>>,
}

//! Label and field selectors from a request's query, applied to objects.

use crate::handlers::Req;
use crate::status::{ApiError, ApiResult};
use capstan_printers::selectors::{FieldSelector, LabelSelector};
use serde_json::Value;

pub struct Filter {
    kind: &'static str,
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Filter {
    pub fn from_req(req: &Req) -> ApiResult<Filter> {
        let kind = req.rr.resource.storage_resource().kind;
        Self::parse(kind, req.param("labelSelector"), req.param("fieldSelector"))
    }

    pub fn parse(
        kind: &'static str,
        label: Option<&str>,
        field: Option<&str>,
    ) -> ApiResult<Filter> {
        let label = match label.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let field = match field.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let f =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                f.validate_for(kind)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        Ok(Filter { kind, label, field })
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.label {
            let empty = serde_json::Map::new();
            let labels = crate::meta::labels(obj).unwrap_or(&empty);
            if !l.matches(labels) {
                return false;
            }
        }
        if let Some(f) = &self.field {
            if !f.matches(self.kind, obj) {
                return false;
            }
        }
        true
    }
}

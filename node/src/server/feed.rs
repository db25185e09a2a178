//! Committed row changes into the API's change log, and subscription filters over them.

use std::sync::Arc;

use nq_api::backend::{ChangeFilter, SqlFailure};
use nq_api::ws::log::EventLog;
use serde_json::{Map, Value as Json};

use crate::changes::{ChangeListener, CommittedChanges, RowChange, RowFilter};
use crate::engine::Engine;
use crate::error::SqlError;
use crate::shell::format::json_value;
use crate::types::Value;

/// Appends each committed row change to the log as a `change` message.
#[derive(Debug)]
pub(crate) struct LogListener {
    pub log: Arc<EventLog>,
}

fn object(change: &RowChange, row: Option<&Vec<Value>>) -> Json {
    match row {
        None => Json::Null,
        Some(values) => Json::Object(
            change
                .table
                .columns
                .iter()
                .zip(values)
                .map(|(c, v)| (c.name.clone(), json_value(v)))
                .collect::<Map<String, Json>>(),
        ),
    }
}

impl ChangeListener for LogListener {
    fn committed(&self, commit: CommittedChanges) {
        for change in commit.changes {
            let table = change.table.name.clone();
            let message = |seq: u64| {
                let mut m = Map::new();
                m.insert("type".into(), "change".into());
                m.insert("table".into(), table.clone().into());
                m.insert("op".into(), change.op.as_str().into());
                m.insert("seq".into(), seq.into());
                m.insert("commit_ts".into(), commit.commit_ts.into());
                m.insert("row".into(), object(&change, change.row.as_ref()));
                m.insert("old".into(), object(&change, change.old.as_ref()));
                Json::Object(m).to_string()
            };
            let text = message;
            let payload: Arc<dyn std::any::Any + Send + Sync> = Arc::new(change.clone());
            self.log.publish(&table, text, Some(payload));
        }
    }
}

/// The filter of a subscription to `table`'s changes with an optional predicate.
pub(crate) fn filter(
    engine: &Engine,
    table: &str,
    predicate: Option<&str>,
) -> Result<ChangeFilter, SqlFailure> {
    let run = || -> Result<ChangeFilter, SqlError> {
        let txn = engine.inner.store.begin()?;
        let def = crate::catalog::table(&txn, table)?;
        drop(txn);
        let Some(predicate) = predicate.filter(|p| !p.trim().is_empty()) else {
            let name = def.name.clone();
            return Ok(Arc::new(move |event| event.topic == name));
        };
        let filter = RowFilter::compile(&def, predicate)?;
        Ok(Arc::new(move |event| {
            event
                .payload
                .as_ref()
                .and_then(|p| p.downcast_ref::<RowChange>())
                .is_some_and(|change| filter.matches(change))
        }))
    };
    run().map_err(|e| super::backend::failure(&e))
}
